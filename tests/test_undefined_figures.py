"""Undefined is not zero: figures with no annotated cell behind them are null
in metrics.json and '–' in every table, with a note naming them."""
import numpy
import pytest
import srsly
from spacy.training import Example
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import PredictionArrays, compute_metrics
from spacy_mlbert.evaluation.compare import compare_markdown
from spacy_mlbert.evaluation.markdown import UNDEFINED, per_language_table
from spacy_mlbert.evaluation.report import markdown_report
from spacy_mlbert.metrics import multilabel_scores
from spacy_mlbert.scorers import score_multilabel
from test_evaluation import write_docbin

LABELS = ["a", "b", "c"]
FIGURES = ("micro_p", "micro_r", "micro_f", "macro_p", "macro_r", "macro_f")


def arrays_with_an_unannotated_language() -> PredictionArrays:
    """en annotates a and b; xx annotates nothing (every label unknown); c is never annotated."""
    y_true = numpy.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype="f")
    y_prob = numpy.asarray([[0.9, 0.2, 0.7], [0.1, 0.8, 0.7], [0.9, 0.9, 0.9], [0.1, 0.1, 0.1]], dtype="f")
    known = numpy.asarray([[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    return PredictionArrays(LABELS, y_true, y_prob, known, ["en", "en", "xx", "xx"], ["1", "2", "3", "4"])


def test_undefined_language_is_null_not_zero():
    metrics = compute_metrics(arrays_with_an_unannotated_language(), {})
    xx = metrics["per_language"]["xx"]
    assert all(xx[key] is None for key in FIGURES) and xx["macro_auc"] is None and xx["per_label"] == {}
    assert xx["n_docs"] == 2
    # the overall figures and en are scored as before: perfect on a and b
    assert metrics["overall"]["micro_f"] == metrics["per_language"]["en"]["macro_f"] == 1.0
    # JSON keeps the nulls
    with make_tempdir() as d:
        srsly.write_json(d / "m.json", metrics)
        assert srsly.read_json(d / "m.json")["per_language"]["xx"]["macro_f"] is None


def test_undefined_shows_as_dash_with_a_note_in_every_table():
    metrics = compute_metrics(arrays_with_an_unannotated_language(), {})
    note = "No annotated cell for: lang xx, label c"
    report = markdown_report(metrics)
    assert note in report
    assert "0.000" not in report.split("## F1 per language and label")[1].split("## Counts")[0]
    _, rows = per_language_table(metrics)
    xx_row = next(row for row in rows if row[0] == "xx")
    assert xx_row[2:] == [UNDEFINED] * 5
    comparison = compare_markdown([metrics, metrics], ["A", "B"])
    assert f"A: {note}" in comparison
    assert "0.000" not in [line for line in comparison.splitlines() if line.startswith("| xx")][0]


def test_compare_reads_null_figures_without_crashing():
    metrics = compute_metrics(arrays_with_an_unannotated_language(), {})
    # a metrics.json that writes an unannotated label as an explicit null
    metrics["overall"]["per_label"]["c"] = None
    metrics["per_language"]["xx"] = None
    text = compare_markdown([metrics], ["A"])
    assert "| c " in text and "0.000" not in [line for line in text.splitlines() if line.startswith("| c ")][0]


def test_nothing_annotated_gives_null_figures_but_the_scorer_keeps_numbers(trained_nlp):
    scores = multilabel_scores(numpy.zeros((2, 2)), numpy.ones((2, 2)), numpy.zeros((2, 2), bool), ["a", "b"], {})
    assert all(scores[key] is None for key in FIGURES)
    # annotated but never predicted: scikit-learn's zero_division=0, a defined 0.0
    scores = multilabel_scores(numpy.ones((2, 1)), numpy.zeros((2, 1)), numpy.ones((2, 1), bool), ["a"], {})
    assert scores["micro_p"] == 0.0 and scores["per_label"]["a"]["r"] == 0.0
    # spaCy's training table calls float() on the scores: never None there
    examples = [Example.from_dict(trained_nlp.make_doc("hello"), {}) for _ in range(2)]
    for eg in examples:
        eg.predicted.cats = {"positive": 0.9}
    scores = score_multilabel(examples, labels=["positive"])
    assert all(isinstance(scores[f"cats_{key}"], float) for key in FIGURES)
    assert scores["cats_score"] == 0.0 and scores["cats_f_per_type"] == {}


def test_evaluate_cli_marks_an_unannotated_language(model_dir):
    import spacy

    nlp = spacy.blank("xx")
    records = [("e1", "en", "Great product, very useful.", {"positive": 1.0, "negative": 0.0})]
    records += [(f"x{i}", "de", f"Text {i}", {}) for i in range(3)]
    with make_tempdir() as d:
        gold = write_docbin(nlp, records, d / "gold.spacy")
        done = CliRunner().invoke(
            app, ["evaluate", str(model_dir), str(gold), "-o", str(d / "m.json"), "-r", str(d / "report")]
        )
        assert done.exit_code == 0, done.output
        metrics = srsly.read_json(d / "m.json")
        report = (d / "report" / "report.md").read_text("utf8")
    assert metrics["per_language"]["de"]["macro_f"] is None and metrics["per_language"]["de"]["n_docs"] == 3
    assert "No annotated cell for: lang de" in done.output and "No annotated cell for: lang de" in report


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    from util import save_tiny_pipeline

    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=2)
