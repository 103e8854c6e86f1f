"""`evaluate` (metrics.json and the report) and `tune-thresholds` (the tuned
pipeline) leave nothing under the final names when writing fails halfway."""
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import report
from test_robustness import write_gold
from util import TRAIN_DATA, save_tiny_pipeline


@pytest.fixture(scope="module")
def model_and_gold(workdir, tiny_xlmr_dir):
    model = save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=2)
    return model, write_gold(spacy.blank("xx"), TRAIN_DATA, workdir / "gold.spacy")


def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_evaluate_writes_nothing_when_the_report_fails(model_and_gold, monkeypatch):
    model, gold = model_and_gold
    real_plot = report.plot_pr_curves

    def plot_then_fail(arrays, metrics, path):
        real_plot(arrays, metrics, path)  # one plot written, the next one fails
        disk_full()

    monkeypatch.setattr(report, "plot_pr_curves", plot_then_fail)
    with make_tempdir() as d:
        args = ["evaluate", str(model), str(gold), "-o", str(d / "m.json")]
        new = CliRunner().invoke(app, args + ["-r", str(d / "report")])
        left_new = sorted(p.name for p in d.iterdir())
        # an existing report folder keeps its files as they were
        (d / "old").mkdir()
        (d / "old" / "report.md").write_text("old report", encoding="utf8")
        old = CliRunner().invoke(app, args + ["-r", str(d / "old")])
        left_old = sorted(p.name for p in (d / "old").iterdir())
        old_text = (d / "old" / "report.md").read_text("utf8")
    assert new.exit_code == 1 and "E063" in new.output
    assert left_new == []  # neither metrics.json nor the report, nor temporaries
    assert old.exit_code == 1 and left_old == ["report.md"] and old_text == "old report"


def test_tune_thresholds_leaves_no_half_pipeline(model_and_gold, monkeypatch):
    model, dev = model_and_gold
    real_to_disk = Language.to_disk

    def save_half(self, path, **kwargs):
        real_to_disk(self, path, **kwargs)  # everything written, then the disk is full
        (Path(path) / "mlbert_textcat" / "model").write_bytes(b"")
        disk_full()

    monkeypatch.setattr(Language, "to_disk", save_half)
    with make_tempdir() as d:
        args = ["tune-thresholds", str(model), str(dev), "--no-calibrate", "-o"]
        new = CliRunner().invoke(app, args + [str(d / "tuned")])
        left_new = sorted(p.name for p in d.iterdir())
        # a pipeline tuned before stays as it was
        monkeypatch.setattr(Language, "to_disk", real_to_disk)
        spacy.load(model).to_disk(d / "before")
        config = (d / "before" / "config.cfg").read_text("utf8")
        monkeypatch.setattr(Language, "to_disk", save_half)
        old = CliRunner().invoke(app, args + [str(d / "before")])
        monkeypatch.setattr(Language, "to_disk", real_to_disk)
        assert spacy.load(d / "before").pipe_names and (d / "before" / "config.cfg").read_text("utf8") == config
        left_old = sorted(p.name for p in d.iterdir())
    assert new.exit_code == 1 and "E063" in new.output and left_new == []
    assert old.exit_code == 1 and left_old == ["before"]
