"""Calibrated probabilities: the fit, ECE, the component's calibration, save/load,
tune-thresholds with calibration and the evaluation report."""
import json

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_mlbert import install_extensions
from spacy_mlbert.calibration import (
    DEFAULT_BINS,
    IDENTITY,
    SCALE_BOUNDS,
    SHIFT_BOUNDS,
    apply_calibration,
    calibrate_probs,
    calibration_errors,
    check_calibration,
    expected_calibration_error,
    fit_calibration,
    fit_platt,
    log_loss,
    logits_from_probs,
    reliability_bins,
)
from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import PredictionArrays, compute_metrics, evaluate_docbin, find_textcat, load_pipeline
from spacy_mlbert.evaluation.report import markdown_report, write_report
from spacy_mlbert.tuning.thresholds import tune_pipeline

from util import TRAIN_DATA, save_tiny_pipeline

LABELS = ["positive", "negative", "useful", "slow"]
TEXTS = [text for text, _ in TRAIN_DATA]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic(scale, shift, n=20000, seed=0):
    """Logits and gold drawn so that sigmoid(scale * z + shift) is the true probability."""
    rng = numpy.random.RandomState(seed)
    z = rng.normal(0.0, 3.0, n)
    gold = rng.rand(n) < apply_calibration(z, scale, shift)
    return z, gold


# --- the fit -------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_calibration_fit_recovers_a_known_temperature(temperature):
    z, gold = synthetic(1.0 / temperature, 0.0)
    a, b = fit_platt(z, gold)
    assert a == pytest.approx(1.0 / temperature, rel=0.06) and b == pytest.approx(0.0, abs=0.08)
    a_only, b_only = fit_platt(z, gold, bias=False)
    assert a_only == pytest.approx(1.0 / temperature, rel=0.06) and b_only == 0.0


def test_calibration_fit_recovers_a_shift_that_a_temperature_cannot():
    z, gold = synthetic(0.7, -1.5, seed=1)
    a, b = fit_platt(z, gold)
    assert a == pytest.approx(0.7, rel=0.06) and b == pytest.approx(-1.5, abs=0.1)
    # temperature scaling alone fits worse: the shift is what it lacks
    assert log_loss(z, gold, a, b) < log_loss(z, gold, *fit_platt(z, gold, bias=False)) - 0.01


def test_calibration_fit_minimises_the_log_loss():
    z, gold = synthetic(0.4, 0.8, n=3000, seed=2)
    a, b = fit_platt(z, gold)
    best = log_loss(z, gold, a, b)
    assert best < log_loss(z, gold) - 0.05  # below the raw sigmoid's
    for da, db in [(0.02, 0), (-0.02, 0), (0, 0.05), (0, -0.05)]:
        assert log_loss(z, gold, a + da, b + db) > best


def test_calibration_fit_fallbacks_and_bounds():
    z = numpy.linspace(-3, 3, 50)
    assert fit_platt(z, numpy.zeros(50)) == IDENTITY  # no positive
    assert fit_platt(z, numpy.ones(50)) == IDENTITY  # no negative
    assert fit_platt([], []) == IDENTITY
    # separable data: the unpenalised loss falls without end; the fit stays bounded
    a, b = fit_platt(z, z > 0, prior=0.0)
    assert SCALE_BOUNDS[0] <= a <= SCALE_BOUNDS[1] and SHIFT_BOUNDS[0] <= b <= SHIFT_BOUNDS[1]
    assert a > 5  # it does sharpen
    # one positive among many: the prior keeps the fit near the identity
    gold = numpy.zeros(50, dtype=bool)
    gold[25] = True
    a, b = fit_platt(z, gold)
    assert numpy.isfinite([a, b]).all() and a > SCALE_BOUNDS[0] and b > SHIFT_BOUNDS[0]


def test_fit_calibration_uses_only_known_cells_and_reports_identity_labels():
    z, gold = synthetic(0.5, 0.5, n=4000, seed=3)
    probs = apply_calibration(z, 1.0, 0.0)
    n = z.shape[0]
    y_true = numpy.stack([gold, numpy.zeros(n), gold], axis=1).astype("f")
    y_prob = numpy.stack([probs, probs, probs], axis=1)
    known = numpy.ones((n, 3), dtype=bool)
    known[: n // 2, 2] = False
    # the unknown cells of label "c" hold nonsense: it must not matter
    y_true[: n // 2, 2] = 1.0 - y_true[: n // 2, 2]
    calibration, identity = fit_calibration(y_true, y_prob, known, ["a", "b", "c"])
    assert identity == ["b"] and calibration["b"] == [1.0, 0.0]
    expected_c = fit_platt(logits_from_probs(probs[n // 2:]), gold[n // 2:])
    assert calibration["c"] == pytest.approx(list(expected_c), abs=1e-6)
    assert calibration["a"] == pytest.approx([0.5, 0.5], abs=0.1)
    # calibrated, the probabilities of new data from the same source fit better
    z2, gold2 = synthetic(0.5, 0.5, n=4000, seed=4)
    raw = apply_calibration(z2, 1.0, 0.0)[:, None]
    fitted = calibrate_probs(raw, {"a": calibration["a"]}, ["a"])
    before = calibration_errors(gold2[:, None], raw, numpy.ones_like(raw, bool), ["a"])["macro"]
    after = calibration_errors(gold2[:, None], fitted, numpy.ones_like(raw, bool), ["a"])["macro"]
    assert before > 0.1 and after < 0.03


def test_calibration_fit_errors():
    with pytest.raises(ValueError, match="E131"):
        fit_platt([0.0, 1.0], [1])
    with pytest.raises(ValueError, match="E132"):
        fit_platt([0.0, numpy.nan], [0, 1])
    with pytest.raises(ValueError, match="E133"):
        fit_platt([0.0, 1.0], [0, 1], prior=-1.0)
    with pytest.raises(ValueError, match="E055"):
        fit_calibration(numpy.zeros((3, 2)), numpy.zeros((3, 1)), numpy.ones((3, 2)), ["a", "b"])


def test_check_calibration_values():
    assert check_calibration({"a": (2, -1), "b": [0.1234567891, 0.5]}, 6) == {"a": [2.0, -1.0], "b": [0.123457, 0.5]}
    for bad in ([0.0, 1.0], [-1.0, 0.0], [1.0], [1.0, 0.0, 0.0], [float("nan"), 0.0], [1.0, float("inf")], [True, 0.0], "1,0", 2.0):
        with pytest.raises(ValueError, match="E130"):
            check_calibration({"a": bad}, 6)
    with pytest.raises(ValueError, match="E130"):
        check_calibration([("a", [1.0, 0.0])], 6)


# --- ECE -----------------------------------------------------------------------


def test_ece_by_hand_and_bin_edges():
    # bins of width 1/15: 0.1 falls in bin 1, 0.9 in bin 13
    probs = [0.1, 0.1, 0.9, 0.9]
    gold = [0, 1, 1, 1]
    assert expected_calibration_error(gold, probs) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    counts, mean_prob, frequency = reliability_bins([0, 1, 1], [0.0, 1.0, 1.0])
    assert counts[0] == 1 and counts[-1] == 2 and counts.sum() == 3  # 1.0 is in the last bin
    assert mean_prob[-1] == 1.0 and frequency[-1] == 1.0 and numpy.isnan(frequency[5])
    assert expected_calibration_error([0, 1, 1], [0.0, 1.0, 1.0]) == 0.0
    assert expected_calibration_error([], []) is None
    # two bins: 0.4 and 0.6 land in different bins, each off by 0.6; one bin: both in it, off by 0
    assert expected_calibration_error([1, 0], [0.4, 0.6], n_bins=2) == pytest.approx(0.6)
    assert expected_calibration_error([1, 0], [0.4, 0.6], n_bins=1) == pytest.approx(0.0)


def test_ece_is_small_for_calibrated_data_and_large_otherwise():
    rng = numpy.random.RandomState(0)
    p = rng.rand(100000)
    gold = rng.rand(100000) < p
    assert expected_calibration_error(gold, p) < 0.01
    assert expected_calibration_error(gold, p ** 3) > 0.1


def test_calibration_errors_per_label_and_macro():
    y_true = numpy.asarray([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype="f")
    y_prob = numpy.asarray([[0.9, 0.2, 0.5], [0.2, 0.7, 0.5], [0.6, 0.3, 0.5]], dtype="f")
    known = numpy.asarray([[1, 1, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    result = calibration_errors(y_true, y_prob, known, ["a", "b", "c"])
    assert set(result["per_label"]) == {"a", "b"}  # "c" has no annotated cell
    assert result["per_label"]["a"] == pytest.approx(expected_calibration_error([1, 0], [0.9, 0.2]))
    assert result["per_label"]["b"] == pytest.approx(expected_calibration_error([0, 1, 1], [0.2, 0.7, 0.3]))
    assert result["macro"] == pytest.approx((result["per_label"]["a"] + result["per_label"]["b"]) / 2)
    assert result["n_bins"] == DEFAULT_BINS and "15 equal-width bins" in result["bins"]
    json.dumps(result, allow_nan=False)
    empty = calibration_errors(y_true, y_prob, numpy.zeros_like(known), ["a", "b", "c"])
    assert empty["macro"] is None and empty["per_label"] == {}


def test_ece_errors():
    for bins in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="E133"):
            expected_calibration_error([1], [0.5], n_bins=bins)
    with pytest.raises(ValueError, match="E132"):
        expected_calibration_error([1, 0], [0.5, 1.5])
    with pytest.raises(ValueError, match="E131"):
        expected_calibration_error([1, 0], [0.5])


# --- the component -----------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    """A tiny transformer + mlbert_textcat pipeline, trained a few steps and saved."""
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=6)


def cats_array(nlp, texts=TEXTS):
    return numpy.asarray([[doc.cats[label] for label in LABELS] for doc in nlp.pipe(texts)])


def test_calibration_default_is_identity(model_dir):
    nlp = load_pipeline(model_dir)
    _, textcat = find_textcat(nlp)
    assert textcat.cfg["calibration"] == {}
    assert textcat.calibration == {label: [1.0, 0.0] for label in LABELS}


def test_calibration_changes_doc_cats_and_decisions(model_dir):
    nlp = load_pipeline(model_dir)
    _, textcat = find_textcat(nlp)
    raw = cats_array(nlp)
    textcat.set_calibration({"positive": [0.5, 1.0], "slow": [2.0, -0.5]})
    assert textcat.calibration["positive"] == [0.5, 1.0] and textcat.calibration["useful"] == [1.0, 0.0]
    calibrated = cats_array(nlp)
    expected = raw.copy()
    expected[:, 0] = apply_calibration(logits_from_probs(raw[:, 0]), 0.5, 1.0)
    expected[:, 3] = apply_calibration(logits_from_probs(raw[:, 3]), 2.0, -0.5)
    numpy.testing.assert_allclose(calibrated, expected, atol=2e-6)
    # labels without a calibration keep their exact probabilities
    assert (calibrated[:, 1:3] == raw[:, 1:3]).all()
    # thresholds apply to the calibrated probabilities
    textcat.set_calibration({"positive": [1.0, 8.0]})
    textcat.set_thresholds({"positive": 0.99})
    assert raw[:, 0].max() < 0.99
    for doc in nlp.pipe(TEXTS):
        assert doc.cats["positive"] >= 0.99 and "positive" in doc._.mlbert_labels
    # {} removes it: the raw probabilities, exactly
    textcat.set_calibration({})
    assert textcat.cfg["calibration"] == {}
    assert (cats_array(nlp) == raw).all()


def test_calibration_set_errors_leave_it_unchanged(model_dir):
    nlp = load_pipeline(model_dir)
    _, textcat = find_textcat(nlp)
    textcat.set_calibration({"useful": [1.5, 0.25]})
    with pytest.raises(ValueError, match="E134"):
        textcat.set_calibration({"nope": [1.0, 0.0]})
    with pytest.raises(ValueError, match="E130"):
        textcat.set_calibration({"useful": [0.0, 0.0]})
    with pytest.raises(ValueError, match="E130"):
        textcat.set_calibration({"useful": "warm"})
    assert textcat.cfg["calibration"] == {"useful": [1.5, 0.25]}


def test_calibration_save_load_round_trip(model_dir, workdir):
    nlp = load_pipeline(model_dir)
    _, textcat = find_textcat(nlp)
    # 0.111697 and 0.227526 come back from srsly's JSON one ulp off: the component rounds them back
    calibration = {"positive": [0.4123456789, 1.25], "negative": [3.5, -2.0], "useful": [0.111697, 0.227526], "slow": [1.0, 0.0]}
    textcat.set_calibration(calibration)
    expected = cats_array(nlp)
    saved = dict(textcat.calibration)
    assert saved["positive"] == [0.412346, 1.25]
    # to_disk / spacy.load
    nlp.to_disk(workdir / "calibrated")
    loaded = spacy.load(workdir / "calibrated")
    assert find_textcat(loaded)[1].calibration == saved
    assert (cats_array(loaded) == expected).all()
    # to_bytes / from_bytes, into a pipeline without calibration
    target = spacy.load(model_dir)
    target.from_bytes(nlp.to_bytes())
    assert find_textcat(target)[1].calibration == saved
    assert (cats_array(target) == expected).all()
    # the component alone
    component = find_textcat(spacy.load(model_dir))[1]
    component.from_bytes(textcat.to_bytes())
    assert component.calibration == saved


def test_pipeline_saved_without_calibration_loads_unchanged(model_dir, workdir):
    """A pipeline saved before calibration existed has no "calibration" in its cfg."""
    nlp = load_pipeline(model_dir)
    raw = cats_array(nlp)
    nlp.to_disk(workdir / "old")
    cfg_path = workdir / "old" / "mlbert_textcat" / "cfg"
    cfg = srsly.read_json(cfg_path)
    del cfg["calibration"]
    srsly.write_json(cfg_path, cfg)
    old = spacy.load(workdir / "old")
    assert find_textcat(old)[1].calibration == {label: [1.0, 0.0] for label in LABELS}
    assert (cats_array(old) == raw).all()


# --- tune-thresholds with calibration -----------------------------------------


@pytest.fixture(scope="module")
def dev_path(model_dir, workdir):
    install_extensions()
    nlp = spacy.blank("xx")
    doc_bin = DocBin(store_user_data=True)
    langs = ["en", "en", "es", "fr", "zh", "ar"]
    # every text twice, one copy with the slow label flipped: noisier gold
    for i, ((text, cats), lang) in enumerate(zip(TRAIN_DATA * 2, langs * 2)):
        doc = nlp.make_doc(text)
        doc.cats = dict(cats)
        if i >= len(TRAIN_DATA):
            doc.cats["slow"] = 1.0 - doc.cats["slow"]
        doc._.mlbert_lang = lang
        doc_bin.add(doc)
    doc_bin.to_disk(workdir / "dev.spacy")
    return workdir / "dev.spacy"


def gold_arrays(nlp, dev_path):
    from spacy_mlbert.evaluation import predict_arrays

    return predict_arrays(nlp, dev_path, batch_size=4)


def label_log_loss(arrays, j):
    mask = arrays.known[:, j]
    return log_loss(logits_from_probs(arrays.y_prob[mask, j]), arrays.y_true[mask, j])


def test_tune_pipeline_calibrates_then_tunes(model_dir, dev_path, workdir):
    report = tune_pipeline(model_dir, dev_path, workdir / "tuned", batch_size=4, method="exact")
    parameters = report["calibration"]["parameters"]
    assert set(parameters) == set(LABELS) and report["calibration"]["identity"] == []
    assert any(pair != [1.0, 0.0] for pair in parameters.values())
    json.dumps(report, allow_nan=False)
    for key in ("before", "after"):
        assert 0.0 <= report[key]["ece"] <= 1.0 and set(report[key]["per_label_ece"]) == set(LABELS)
    tuned = spacy.load(workdir / "tuned")
    _, textcat = find_textcat(tuned)
    assert textcat.calibration == parameters
    # the calibration lowers each label's log-loss on the data it was fitted on
    raw, calibrated = gold_arrays(load_pipeline(model_dir), dev_path), gold_arrays(tuned, dev_path)
    for j in range(len(LABELS)):
        assert label_log_loss(calibrated, j) <= label_log_loss(raw, j) + 1e-6
    # the thresholds were tuned on the calibrated probabilities: the saved
    # pipeline scores exactly as reported, and tuning never lowers F1
    metrics = evaluate_docbin(tuned, dev_path, batch_size=4)
    assert metrics["overall"]["macro_f"] == pytest.approx(report["after"]["macro_f"])
    assert metrics["ece"]["macro"] == pytest.approx(report["after"]["ece"], abs=1e-6)
    assert report["after"]["macro_f"] >= report["before"]["macro_f"]
    # tuning the calibrated pipeline again refits from the raw probabilities
    again = tune_pipeline(workdir / "tuned", dev_path, workdir / "tuned-again", batch_size=4, method="exact")
    for label in LABELS:
        assert again["calibration"]["parameters"][label] == pytest.approx(parameters[label], abs=1e-4)


def test_tune_pipeline_without_calibration_keeps_probabilities(model_dir, dev_path, workdir):
    report = tune_pipeline(model_dir, dev_path, workdir / "uncalibrated", batch_size=4, calibrate=False)
    assert report["calibration"] is None
    assert report["after"]["ece"] == report["before"]["ece"]
    _, textcat = find_textcat(spacy.load(workdir / "uncalibrated"))
    assert textcat.cfg["calibration"] == {}


def test_cli_tune_thresholds_reports_ece(model_dir, dev_path, workdir):
    runner = CliRunner()
    output = workdir / "cli-calibrated"
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(dev_path), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "ECE before" in result.output and "macro ECE" in result.output and "15 equal-width" in result.output
    assert any(pair != [1.0, 0.0] for pair in find_textcat(spacy.load(output))[1].calibration.values())
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(dev_path), "-o", str(output), "--no-calibrate"])
    assert result.exit_code == 0, result.output
    assert "not fitted" in result.output
    assert find_textcat(spacy.load(output))[1].cfg["calibration"] == {}


# --- evaluate -------------------------------------------------------------------


def hand_arrays() -> PredictionArrays:
    y_true = numpy.asarray([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype="f")
    y_prob = numpy.asarray([[0.9, 0.2], [0.4, 0.7], [0.6, 0.3], [0.1, 0.8], [0.3, 0.1]], dtype="f")
    known = numpy.asarray([[1, 1], [1, 1], [1, 0], [1, 1], [1, 1]], dtype=bool)
    return PredictionArrays(["a", "b"], y_true, y_prob, known, ["en", "en", "es", "es", "es"], list("12345"))


def test_compute_metrics_has_ece_overall_and_per_language():
    arrays = hand_arrays()
    metrics = compute_metrics(arrays, {})
    ece = metrics["ece"]
    expected = calibration_errors(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels)
    assert ece["macro"] == pytest.approx(expected["macro"]) and ece["per_label"] == pytest.approx(expected["per_label"])
    en = arrays.select(numpy.asarray([1, 1, 0, 0, 0], dtype=bool))
    assert ece["per_language"]["en"] == pytest.approx(calibration_errors(en.y_true, en.y_prob, en.known, ["a", "b"])["macro"])
    text = markdown_report(metrics)
    assert "## Calibration" in text and "15 equal-width" in text
    assert f"| Macro | {ece['macro']:.3f} |" in text
    # metrics written before ECE existed still make a report
    old = {k: v for k, v in metrics.items() if k != "ece"}
    assert "## Calibration" not in markdown_report(old)


def test_report_writes_the_reliability_diagram(workdir):
    arrays = hand_arrays()
    written = write_report(compute_metrics(arrays, {}), arrays, workdir / "report")
    assert written["reliability_plot"] == workdir / "report" / "reliability.png"
    assert written["reliability_plot"].read_bytes().startswith(PNG_SIGNATURE)
    assert "![reliability](reliability.png)" in written["markdown"].read_text(encoding="utf8")


def test_cli_evaluate_reports_ece(model_dir, dev_path, workdir):
    out = workdir / "eval" / "metrics.json"
    report_dir = workdir / "eval" / "report"
    result = CliRunner().invoke(app, ["evaluate", str(model_dir), str(dev_path), "-o", str(out), "-r", str(report_dir)])
    assert result.exit_code == 0, result.output
    assert "ECE" in result.output
    metrics = json.loads(out.read_text(encoding="utf8"))
    assert 0.0 <= metrics["ece"]["macro"] <= 1.0 and set(metrics["ece"]["per_label"]) == set(LABELS)
    assert (report_dir / "reliability.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "## Calibration" in (report_dir / "report.md").read_text(encoding="utf8")
