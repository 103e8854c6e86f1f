"""Evaluation per language, the report and the `evaluate` command."""
import json
from pathlib import Path

import numpy
import pytest
import spacy
from numpy.testing import assert_allclose
from spacy.tokens import DocBin
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert import install_extensions
from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import (
    UNKNOWN_LANG,
    PredictionArrays,
    compute_metrics,
    evaluate_docbin,
    find_textcat,
    load_pipeline,
    predict_arrays,
)
from spacy_mlbert.metrics import multilabel_scores
from spacy_mlbert.evaluation.report import markdown_report, write_report
from util import TRAIN_DATA, save_tiny_pipeline

LABELS = ["positive", "negative", "useful", "slow"]
LANGS = ["en", "en", "es", "fr", "zh", "ar"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gold_records():
    """(id, lang, text, cats): TRAIN_DATA plus a partly annotated text and one without a language."""
    records = [(f"r{i}", lang, text, cats) for i, ((text, cats), lang) in enumerate(zip(TRAIN_DATA, LANGS))]
    records.append(("r6", "es", "Muy lento, pero útil.", {"slow": 1.0, "useful": 1.0}))
    records.append(("r7", None, "Great value 👍 would buy again!", {"positive": 1.0, "negative": 0.0}))
    return records


def write_docbin(nlp, records, path: Path) -> Path:
    install_extensions()
    doc_bin = DocBin(store_user_data=True)
    for record_id, lang, text, cats in records:
        doc = nlp.make_doc(text)
        doc.cats = dict(cats)
        doc._.mlbert_lang = lang
        doc._.mlbert_id = record_id
        doc_bin.add(doc)
    doc_bin.to_disk(path)
    return path


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    """A tiny transformer + mlbert_textcat pipeline, trained a few steps and saved."""
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=8)


@pytest.fixture(scope="module")
def nlp(model_dir):
    return load_pipeline(model_dir)


@pytest.fixture(scope="module")
def gold_path(nlp, workdir):
    return write_docbin(nlp, gold_records(), workdir / "gold.spacy")


def hand_arrays() -> PredictionArrays:
    y_true = numpy.asarray([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype="f")
    y_prob = numpy.asarray([[0.9, 0.2], [0.4, 0.7], [0.6, 0.3], [0.1, 0.8], [0.3, 0.1]], dtype="f")
    known = numpy.asarray([[1, 1], [1, 1], [1, 0], [1, 1], [1, 1]], dtype=bool)
    langs = ["en", "en", "es", "es", UNKNOWN_LANG]
    return PredictionArrays(["a", "b"], y_true, y_prob, known, langs, ["1", "2", "3", "4", "5"])


# --- pure arrays --------------------------------------------------------------


def test_compute_metrics_per_language_matches_subsets():
    arrays = hand_arrays()
    thresholds = {"a": 0.5, "b": 0.25}
    metrics = compute_metrics(arrays, thresholds)
    assert metrics["labels"] == ["a", "b"]
    assert metrics["n_docs"] == 5
    assert metrics["languages"] == {"en": 2, "es": 2, UNKNOWN_LANG: 1}
    assert metrics["thresholds"] == thresholds
    assert metrics["overall"] == multilabel_scores(
        arrays.y_true, arrays.y_prob, arrays.known, arrays.labels, thresholds
    )
    for lang, rows in {"en": [0, 1], "es": [2, 3], UNKNOWN_LANG: [4]}.items():
        expected = multilabel_scores(
            arrays.y_true[rows], arrays.y_prob[rows], arrays.known[rows], arrays.labels, thresholds
        )
        assert metrics["per_language"][lang] == expected
    # "es" annotates "b" only where it is negative: P/R/F are 0, AUC undefined
    assert metrics["per_language"]["es"]["per_label"]["b"]["auc"] is None
    json.dumps(metrics, allow_nan=False)


def test_compute_metrics_unknown_cells_are_not_scored():
    arrays = hand_arrays()
    metrics = compute_metrics(arrays, {})
    assert metrics["overall"]["per_label"]["b"]["n_known"] == 4
    changed = hand_arrays()
    changed.y_true[2, 1] = 0.0  # an unknown cell: its value must not matter
    changed.y_prob[2, 1] = 0.99
    assert compute_metrics(changed, {}) == metrics


def test_select_and_by_language():
    arrays = hand_arrays()
    parts = arrays.by_language()
    assert list(parts) == ["en", "es", UNKNOWN_LANG]
    assert parts["es"].ids == ["3", "4"]
    assert_allclose(parts["es"].y_prob, arrays.y_prob[2:4])


def test_report_files():
    arrays = hand_arrays()
    metrics = compute_metrics(arrays, {"a": 0.5, "b": 0.5})
    with make_tempdir() as tmp_dir:
        written = write_report(metrics, arrays, tmp_dir / "report")
        assert set(written) == {"markdown", "f1_plot", "pr_plot", "reliability_plot"}
        assert written["reliability_plot"].name == "reliability.png"
        for key in ("f1_plot", "pr_plot", "reliability_plot"):
            data = written[key].read_bytes()
            assert data.startswith(PNG_SIGNATURE)
            import matplotlib.image

            image = matplotlib.image.imread(written[key])
            assert image.shape[0] > 100 and image.shape[1] > 100
        text = written["markdown"].read_text(encoding="utf8")
        for heading in ("# Evaluation report", "## Overall", "## Per label", "## F1 per language and label", "## Counts"):
            assert heading in text
        assert "| en | 2 |" in text
        assert "![f1_per_language](f1_per_language.png)" in text
        # no arrays: no curves, but the rest is written
        written = write_report(metrics, None, tmp_dir / "no-curves")
        assert set(written) == {"markdown", "f1_plot"}
        with pytest.raises(ValueError, match=r"E062"):
            write_report(metrics, None, written["markdown"])
        with pytest.raises(ValueError, match=r"E065"):
            write_report({"overall": {}}, None, tmp_dir / "bad")


def test_markdown_escapes_and_dashes():
    arrays = hand_arrays()
    arrays.labels = ["a|b", "c"]
    text = markdown_report(compute_metrics(arrays, {}))
    assert "a\\|b" in text
    assert "| es | 2 |" in text
    # every table row has as many cells as its header
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({row.replace("\\|", "").count("|") for row in rows}) == 1


# --- with a pipeline ------------------------------------------------------------


def test_find_textcat_and_load_errors(model_dir):
    name, textcat = find_textcat(spacy.load(model_dir))
    assert name == "mlbert_textcat" and list(textcat.labels) == LABELS
    with pytest.raises(ValueError, match=r"E013.*'blank'"):
        find_textcat(spacy.blank("xx"), "blank")
    with make_tempdir() as tmp_dir:
        with pytest.raises(ValueError, match=r"E012.*does not exist"):
            load_pipeline(tmp_dir / "missing")
        with pytest.raises(ValueError, match=r"E012"):
            load_pipeline(tmp_dir)
        (tmp_dir / "file.txt").write_text("x")
        with pytest.raises(ValueError, match=r"E012"):
            load_pipeline(tmp_dir / "file.txt")
        spacy.blank("en").to_disk(tmp_dir / "blank")
        with pytest.raises(ValueError, match=r"E013"):
            load_pipeline(tmp_dir / "blank")


def test_evaluate_docbin(nlp, gold_path):
    metrics = evaluate_docbin(nlp, gold_path, batch_size=3)
    assert set(metrics) == {"overall", "per_language", "labels", "thresholds", "n_docs", "languages", "ece"}
    assert set(metrics["ece"]["per_label"]) == set(LABELS)
    assert list(metrics["ece"]["per_language"]) == sorted(metrics["languages"])
    assert metrics["n_docs"] == 8
    assert metrics["languages"] == {"ar": 1, "en": 2, "es": 2, "fr": 1, UNKNOWN_LANG: 1, "zh": 1}
    assert list(metrics["per_language"]) == sorted(metrics["languages"])
    assert metrics["thresholds"] == {label: 0.5 for label in LABELS}
    assert metrics["overall"]["per_label"]["slow"]["n_known"] == 7
    assert metrics["overall"]["per_label"]["positive"]["n_known"] == 7
    assert metrics["per_language"][UNKNOWN_LANG]["per_label"].keys() == {"positive", "negative"}
    json.dumps(metrics, allow_nan=False)


def test_predict_arrays_keeps_order_and_matches_pipeline(nlp, gold_path):
    arrays = predict_arrays(nlp, gold_path, batch_size=2)
    records = gold_records()
    assert arrays.ids == [r[0] for r in records]
    assert arrays.langs == [r[1] or UNKNOWN_LANG for r in records]
    for i, (_, _, text, cats) in enumerate(records):
        doc = nlp(text)
        assert_allclose(arrays.y_prob[i], [doc.cats[label] for label in LABELS], atol=1e-5)
        assert arrays.known[i].tolist() == [label in cats for label in LABELS]
    # the same gold docs, given directly, give the same arrays
    docs = list(DocBin(store_user_data=True).from_disk(gold_path).get_docs(nlp.vocab))
    again = predict_arrays(nlp, docs, batch_size=8)
    assert_allclose(again.y_prob, arrays.y_prob, atol=1e-5)
    assert again.ids == arrays.ids
    # gold cats are left alone
    assert docs[6].cats == {"slow": 1.0, "useful": 1.0}


def test_evaluate_data_errors(nlp, workdir):
    with pytest.raises(ValueError, match=r"E050"):
        predict_arrays(nlp, workdir / "missing.spacy")
    garbage = workdir / "garbage.spacy"
    garbage.write_bytes(b"not a docbin")
    with pytest.raises(ValueError, match=r"E051.*garbage.spacy"):
        predict_arrays(nlp, garbage)
    empty = workdir / "empty.spacy"
    DocBin().to_disk(empty)
    with pytest.raises(ValueError, match=r"E052"):
        predict_arrays(nlp, empty)
    other = write_docbin(nlp, [("x", "en", "Some text.", {"sports": 1.0})], workdir / "other.spacy")
    with pytest.raises(ValueError, match=r"E053.*sports"):
        predict_arrays(nlp, other)
    with pytest.raises(ValueError, match=r"E058"):
        predict_arrays(nlp, other, batch_size=0)


def test_cli_evaluate(model_dir, gold_path, workdir):
    output = workdir / "cli" / "metrics.json"
    report_dir = workdir / "cli" / "report"
    args = ["evaluate", str(model_dir), str(gold_path), "--output", str(output)]
    result = CliRunner().invoke(app, args + ["--report-dir", str(report_dir), "-b", "4"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(output.read_text(encoding="utf8"))
    assert metrics["n_docs"] == 8
    assert set(metrics["per_language"]) == {"ar", "en", "es", "fr", "zh", UNKNOWN_LANG}
    assert set(metrics["overall"]["per_label"]) == set(LABELS)
    assert (report_dir / "report.md").is_file()
    assert (report_dir / "f1_per_language.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (report_dir / "pr_curves.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "Per language" in result.output and "Macro F1" in result.output


def test_cli_evaluate_errors_are_coded(model_dir, gold_path, workdir):
    runner = CliRunner()
    output = str(workdir / "never.json")
    result = runner.invoke(app, ["evaluate", str(workdir / "nope"), str(gold_path), "-o", output])
    assert result.exit_code == 1
    assert "[E012]" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["evaluate", str(model_dir), str(workdir / "nope.spacy"), "-o", output])
    assert result.exit_code == 1 and "[E050]" in result.output
    assert not Path(output).exists()
