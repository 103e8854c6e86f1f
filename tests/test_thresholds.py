"""Per-label threshold tuning: exact answers on hand-made arrays, the search
against brute force, and `tune-thresholds` on a tiny pipeline."""
import json

import numpy
import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import evaluate_docbin, find_textcat
from spacy_mlbert.metrics import multilabel_scores
from spacy_mlbert.tuning.thresholds import (
    DEFAULT_METHOD,
    TUNING_METHODS,
    best_threshold,
    candidate_thresholds,
    tune_pipeline,
    tune_thresholds,
)
from util import save_tiny_pipeline, write_dev_docbin

LABELS = ["positive", "negative", "useful", "slow"]


def label_f1(y_true, y_prob, known, labels, thresholds):
    scores = multilabel_scores(y_true, y_prob, known, labels, thresholds)["per_label"]
    return {label: scores[label]["f"] for label in scores}


# --- pure arrays --------------------------------------------------------------


def test_separable_label_keeps_05_when_it_is_among_the_best():
    gold = numpy.asarray([1, 1, 0, 0], dtype=bool)
    probs = numpy.asarray([0.9, 0.8, 0.3, 0.2], dtype="f")
    assert best_threshold(gold, probs) == (0.5, 1.0)


def test_exact_midpoint_when_05_is_not_best():
    gold = numpy.asarray([1, 1, 0, 0], dtype=bool)
    probs = numpy.asarray([0.4, 0.35, 0.1, 0.05], dtype="f")
    threshold, f1 = best_threshold(gold, probs)
    # every cut in (0.1, 0.35] separates the classes; the midpoint is chosen
    assert threshold == pytest.approx(0.225, abs=1e-7) and f1 == 1.0
    high = numpy.asarray([0.97, 0.95, 0.9, 0.6], dtype="f")
    threshold, f1 = best_threshold(gold, high)
    assert threshold == pytest.approx(0.925, abs=1e-7) and f1 == 1.0


def test_ties_go_to_the_threshold_closest_to_05():
    gold = numpy.asarray([1, 0, 1, 0], dtype=bool)
    probs = numpy.asarray([0.8, 0.2, 0.7, 0.6], dtype="f")
    # F1 is 1.0 for any cut in (0.6, 0.7]; of the candidates only 0.65 is there
    assert best_threshold(gold, probs)[0] == pytest.approx(0.65, abs=1e-7)
    # F1 is 1.0 at 0.4, 0.5 and 0.6: 0.5 itself wins
    gold = numpy.asarray([1, 0], dtype=bool)
    probs = numpy.asarray([0.7, 0.1], dtype="f")
    assert best_threshold(gold, probs) == (0.5, 1.0)
    # equally good and equally far from 0.5: the lower one
    assert best_threshold(gold, probs, numpy.asarray([0.6, 0.4]))[0] == 0.4
    assert best_threshold(gold, probs, numpy.asarray([0.3, 0.55, 0.65]))[0] == 0.55


def test_candidates():
    probs = numpy.asarray([0.4, 0.35, 0.1, 0.05, 0.1], dtype="f")
    expected = [0.0, 0.025, 0.075, 0.225, 0.375, 0.5, 0.7]
    numpy.testing.assert_allclose(candidate_thresholds(probs), expected, atol=1e-7)
    # candidates have the component's 6 decimals: 2e-6 apart can be cut ...
    gold = numpy.asarray([False, True])
    probs = numpy.asarray([0.3, 0.300002], dtype="f")
    threshold, f1 = best_threshold(gold, probs)
    assert f1 == 1.0 and threshold == round(threshold, 6)
    assert (probs >= threshold).tolist() == [False, True]
    # ... neighbouring float32 values cannot, and the F1 says so
    low = numpy.float32(0.3)
    probs = numpy.asarray([low, numpy.nextafter(low, numpy.float32(1.0))])
    threshold, f1 = best_threshold(gold, probs)
    predicted = probs >= threshold
    assert f1 == pytest.approx(2 * (gold & predicted).sum() / (predicted.sum() + gold.sum()))


def test_all_positive_can_be_chosen():
    gold = numpy.asarray([1, 1, 1, 0], dtype=bool)
    probs = numpy.asarray([0.1, 0.0, 0.2, 0.3], dtype="f")
    threshold, f1 = best_threshold(gold, probs)
    assert f1 == pytest.approx(6 / 7)  # every text positive: P 3/4, R 1
    assert threshold == 0.0


def test_tune_thresholds_ignores_unknown_cells():
    y_true = numpy.asarray([[1], [0], [1], [0]], dtype="f")
    y_prob = numpy.asarray([[0.3], [0.2], [0.25], [0.9]], dtype="f")
    known = numpy.asarray([[1], [1], [1], [0]], dtype=bool)
    # the unknown row would be a false positive at any threshold below 0.9
    assert tune_thresholds(y_true, y_prob, known, ["a"], method="exact") == {"a": pytest.approx(0.225, abs=1e-7)}
    changed = y_true.copy()
    changed[3, 0] = 1.0
    assert tune_thresholds(changed, y_prob, known, ["a"], method="exact") == tune_thresholds(y_true, y_prob, known, ["a"], method="exact")


def test_untunable_labels_keep_the_fallback():
    y_true = numpy.asarray([[0, 1, 1], [0, 0, 1]], dtype="f")
    y_prob = numpy.asarray([[0.9, 0.7, 0.6], [0.1, 0.2, 0.4]], dtype="f")
    known = numpy.asarray([[1, 0, 1], [1, 0, 1]], dtype=bool)
    labels = ["no_pos", "unknown", "ok"]
    thresholds = tune_thresholds(y_true, y_prob, known, labels)
    assert thresholds["no_pos"] == 0.5 and thresholds["unknown"] == 0.5
    assert thresholds["ok"] < 0.4
    kept = tune_thresholds(y_true, y_prob, known, labels, fallback={"no_pos": 0.8})
    assert kept["no_pos"] == 0.8 and kept["unknown"] == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_tuned_f1_is_the_best_and_never_below_05(seed):
    rng = numpy.random.default_rng(seed)
    labels = ["a", "b", "c", "d"]
    y_true = (rng.random((60, 4)) < [0.05, 0.2, 0.5, 0.8]).astype("f")
    y_prob = numpy.clip(y_true * 0.3 + rng.random((60, 4)) * 0.7, 0, 1).astype("f")
    y_prob[:10] = numpy.round(y_prob[:10], 1)  # ties among probabilities
    known = rng.random((60, 4)) < 0.85
    thresholds = tune_thresholds(y_true, y_prob, known, labels, method="exact")
    tuned = label_f1(y_true, y_prob, known, labels, thresholds)
    at_05 = label_f1(y_true, y_prob, known, labels, {})
    for j, label in enumerate(labels):
        assert tuned[label] >= at_05[label]
        mask = known[:, j]
        gold = y_true[mask, j] >= 0.5
        if not gold.any():
            continue
        brute = max(
            2 * numpy.sum(gold & (y_prob[mask, j] >= t)) / (numpy.sum(y_prob[mask, j] >= t) + gold.sum())
            for t in list(y_prob[mask, j]) + [0.0, 1.1]
        )
        assert tuned[label] == pytest.approx(brute)
    # the thresholds survive being saved as JSON with the same scores
    saved = srsly.json_loads(srsly.json_dumps(thresholds))
    assert label_f1(y_true, y_prob, known, labels, saved) == tuned


def test_grid_and_input_errors():
    y_true = numpy.asarray([[1], [0], [1]], dtype="f")
    y_prob = numpy.asarray([[0.35], [0.05], [0.3]], dtype="f")
    known = numpy.ones((3, 1), dtype=bool)
    assert tune_thresholds(y_true, y_prob, known, ["a"], grid=[0.1, 0.2, 0.4], method="exact") == {"a": 0.2}
    assert tune_thresholds(y_true, y_prob, known, ["a"], grid=[0.9], method="exact") == {"a": 0.5}
    with pytest.raises(ValueError, match="E054"):
        tune_thresholds(y_true, y_prob, known, ["a"], grid=[1.5])
    with pytest.raises(ValueError, match="E054"):
        tune_thresholds(y_true, y_prob, known, ["a"], grid=["0.2"])
    with pytest.raises(ValueError, match="E055"):
        tune_thresholds(y_true, y_prob, known, ["a", "b"])
    with pytest.raises(ValueError, match="E055"):
        tune_thresholds(y_true, y_prob[:2], known, ["a"])


# --- robust methods -------------------------------------------------------------


def _noisy_arrays(seed, n=80):
    rng = numpy.random.default_rng(seed)
    y_true = (rng.random((n, 4)) < [0.1, 0.25, 0.5, 0.7]).astype("f")
    y_prob = numpy.clip(y_true * 0.35 + rng.random((n, 4)) * 0.65, 0, 1).astype("f")
    known = rng.random((n, 4)) < 0.9
    return y_true, y_prob, known


@pytest.mark.parametrize("method", TUNING_METHODS)
def test_every_method_keeps_05_where_it_separates_perfectly(method):
    y_true = numpy.asarray([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 1]], dtype="f")
    y_prob = numpy.where(y_true > 0, 0.85, 0.15).astype("f")
    known = numpy.ones_like(y_true, dtype=bool)
    assert tune_thresholds(y_true, y_prob, known, ["a", "b"], method=method) == {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize("method", TUNING_METHODS)
def test_every_method_is_repeatable_order_free_and_saved_exactly(method):
    y_true, y_prob, known = _noisy_arrays(0)
    labels = ["a", "b", "c", "d"]
    thresholds = tune_thresholds(y_true, y_prob, known, labels, method=method)
    assert tune_thresholds(y_true, y_prob, known, labels, method=method) == thresholds
    assert all(0.0 <= t <= 1.0 and round(t, 6) == t for t in thresholds.values())
    saved = srsly.json_loads(srsly.json_dumps(thresholds))
    assert saved == pytest.approx(thresholds, abs=1e-12)
    assert label_f1(y_true, y_prob, known, labels, saved) == label_f1(y_true, y_prob, known, labels, thresholds)
    if method != "global":  # a label's cut does not depend on its column or the other labels
        reordered = tune_thresholds(y_true[:, ::-1], y_prob[:, ::-1], known[:, ::-1], labels[::-1], method=method)
        assert reordered == thresholds
    # unknown cells are ignored, labels without a positive keep the fallback
    y_true[~known] = 1 - y_true[~known]
    y_true[:, 0] = 0
    changed = tune_thresholds(y_true, y_prob, known, labels, method=method, fallback={"a": 0.7})
    assert changed["a"] == 0.7
    if method != "global":
        assert {k: changed[k] for k in labels[1:]} == {k: thresholds[k] for k in labels[1:]}


@pytest.mark.parametrize("method", ["bagged", "smoothed"])
@pytest.mark.parametrize("seed", range(3))
def test_resampled_methods_never_beat_exact_on_the_tuning_data(method, seed):
    y_true, y_prob, known = _noisy_arrays(seed)
    labels = ["a", "b", "c", "d"]
    exact = label_f1(y_true, y_prob, known, labels, tune_thresholds(y_true, y_prob, known, labels, method="exact"))
    robust = label_f1(y_true, y_prob, known, labels, tune_thresholds(y_true, y_prob, known, labels, method=method))
    assert all(robust[label] <= exact[label] + 1e-12 for label in labels)


def _brute_best_cut(gold, probs):
    """The best-F1 cut of one sample, counted text by text; ties to the cut
    closest to 0.5, then the lower one."""
    best = None
    for cut in candidate_thresholds(probs):
        predicted = probs >= numpy.float32(cut)
        tp = int((predicted & gold).sum())
        f1 = 2 * tp / (predicted.sum() + gold.sum())
        key = (-f1, abs(cut - 0.5), cut)
        if best is None or key < best:
            best = key
    return best[2]


@pytest.mark.parametrize("seed", range(2))
def test_bagged_is_the_median_of_the_resamples_best_cuts(seed):
    """Each label's bagged threshold is the median of the best cuts of 200
    bootstrap resamples of its annotated cells, drawn from a RandomState
    seeded with the CRC-32 of the label's name; resamples without a
    positive are skipped."""
    import zlib

    y_true, y_prob, known = _noisy_arrays(seed, n=40)
    labels = ["a", "b", "c", "d"]
    bagged = tune_thresholds(y_true, y_prob, known, labels, method="bagged")
    exact = tune_thresholds(y_true, y_prob, known, labels, method="exact")
    for j, label in enumerate(labels):
        gold = y_true[known[:, j], j] >= 0.5
        probs = y_prob[known[:, j], j]
        draws = numpy.random.RandomState(zlib.crc32(label.encode("utf8"))).randint(0, gold.size, size=(200, gold.size))
        cuts = [_brute_best_cut(gold[rows], probs[rows]) for rows in draws if gold[rows].any()]
        assert len(cuts) >= 150
        assert bagged[label] == round(float(numpy.median(cuts)), 6)
    assert bagged != exact  # the data is noisy enough for the methods to differ


def test_global_is_the_one_cut_with_the_best_macro_f1():
    y_true, y_prob, known = _noisy_arrays(1)
    labels = ["a", "b", "c", "d"]
    thresholds = tune_thresholds(y_true, y_prob, known, labels, method="global")
    assert len(set(thresholds.values())) == 1

    def macro(cut):
        return numpy.mean(list(label_f1(y_true, y_prob, known, labels, {k: cut for k in labels}).values()))

    brute = max(macro(t) for t in list(numpy.unique(y_prob)) + [0.0, 0.5, 1.1])
    assert macro(thresholds["a"]) == pytest.approx(brute)


def test_unknown_method_is_a_coded_error():
    y_true, y_prob, known = _noisy_arrays(0)
    with pytest.raises(ValueError, match="E100"):
        tune_thresholds(y_true, y_prob, known, ["a", "b", "c", "d"], method="best")


def test_cli_default_method_is_the_package_default():
    import inspect

    from spacy_mlbert.cli.tune_thresholds import tune_thresholds_cli

    option = inspect.signature(tune_thresholds_cli).parameters["method"].default
    assert option.default == DEFAULT_METHOD
    assert all(method in option.help for method in TUNING_METHODS)


# --- with a pipeline ------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    """A tiny transformer + mlbert_textcat pipeline, trained a few steps and saved."""
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=6)


@pytest.fixture(scope="module")
def dev_path(model_dir, workdir):
    return write_dev_docbin(workdir / "dev.spacy")


def test_tune_pipeline_saves_thresholds(model_dir, dev_path, workdir):
    output = workdir / "tuned"
    report = tune_pipeline(model_dir, dev_path, output, batch_size=4, method="exact")
    assert report["labels"] == LABELS and report["n_docs"] == 6 and report["untuned"] == []
    before, after = report["before"], report["after"]
    assert before["thresholds"] == {label: 0.5 for label in LABELS}
    for label in LABELS:
        assert after["per_label_f"][label] >= before["per_label_f"][label]
    assert after["macro_f"] >= before["macro_f"]
    json.dumps(report, allow_nan=False)
    # the thresholds are saved and reloaded, and score as reported
    nlp = spacy.load(output)
    _, textcat = find_textcat(nlp)
    assert textcat.thresholds == pytest.approx(after["thresholds"], abs=1e-12)
    metrics = evaluate_docbin(nlp, dev_path, batch_size=4)
    assert metrics["overall"]["macro_f"] == pytest.approx(after["macro_f"])
    # the original pipeline is unchanged
    _, original = find_textcat(spacy.load(model_dir))
    assert original.thresholds == {label: 0.5 for label in LABELS}


def test_tune_pipeline_default_method_is_saved_as_reported(model_dir, dev_path, workdir):
    report = tune_pipeline(model_dir, dev_path, workdir / "tuned-default", batch_size=4)
    assert report["method"] == DEFAULT_METHOD
    _, textcat = find_textcat(spacy.load(workdir / "tuned-default"))
    assert textcat.thresholds == pytest.approx(report["after"]["thresholds"], abs=1e-12)
    with pytest.raises(ValueError, match="E100"):
        tune_pipeline(model_dir, dev_path, workdir / "never", method="median")
    assert not (workdir / "never").exists()


def test_tune_pipeline_output_checks(model_dir, dev_path, workdir):
    with pytest.raises(ValueError, match="E056"):
        tune_pipeline(model_dir, dev_path, model_dir)
    other = workdir / "not-a-pipeline"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="E057"):
        tune_pipeline(model_dir, dev_path, other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_tune_thresholds(model_dir, dev_path, workdir):
    output = workdir / "cli-tuned"
    runner = CliRunner()
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(dev_path), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "F before" in result.output and "macro F" in result.output
    _, textcat = find_textcat(spacy.load(output))
    assert textcat.thresholds != {label: 0.5 for label in LABELS}
    # an existing pipeline folder may be overwritten by a new tuning
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(dev_path), "-o", str(output), "--method", "global"])
    assert result.exit_code == 0, result.output
    assert len(set(find_textcat(spacy.load(output))[1].thresholds.values())) == 1
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(dev_path), "-o", str(output), "-m", "best"])
    assert result.exit_code == 1 and "[E100]" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["tune-thresholds", str(model_dir), str(workdir / "none.spacy"), "-o", str(output)])
    assert result.exit_code == 1 and "[E050]" in result.output and "Traceback" not in result.output
