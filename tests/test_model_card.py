"""The model card describes the packaged model: its own evaluation, a
benchmark only of its config and encoder, and nothing `spacy package` warns about."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srsly
from spacy.util import make_tempdir
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.packaging.model_card import BENCHMARK_PREFIX, encoder_source
from test_robustness import write_gold
from util import TRAIN_DATA

ROOT = Path(__file__).parent.parent
TABLE = "# Quality\n\n| macro-F1 | mlbert |\n|---|---:|\n| eng | 0.5 |\n"


@pytest.fixture(scope="module")
def evaluated(trained_nlp, workdir):
    """The trained pipeline saved, and its metrics.json from `evaluate`."""
    model = workdir / "card-model"
    trained_nlp.to_disk(model)
    gold = write_gold(trained_nlp, TRAIN_DATA, workdir / "card-gold.spacy")
    done = CliRunner().invoke(app, ["evaluate", str(model), str(gold), "--output", str(workdir / "card-metrics.json")])
    assert done.exit_code == 0, done.output
    return model, workdir / "card-metrics.json"


def benchmark_file(path: Path, **header) -> Path:
    first = f"{BENCHMARK_PREFIX} {json.dumps(header)} -->\n" if header else ""
    path.write_text(first + TABLE, encoding="utf8")
    return path


def card(model: Path, metrics: Path, out: Path, *extra: str):
    args = ["model-card", str(model), str(metrics), "-o", str(out), "--name", "demo", *extra]
    return CliRunner().invoke(app, args)


def test_model_card_quotes_a_benchmark_only_of_its_config_and_encoder(evaluated):
    model, metrics_path = evaluated
    encoder = encoder_source(model)["name"]
    with make_tempdir() as d:
        same = benchmark_file(d / "same.md", config="train.cfg", encoder=encoder)
        done = card(model, metrics_path, d / "meta.json", "--benchmark", str(same), "--config", "configs/train.cfg")
        assert done.exit_code == 0, done.output
        meta = srsly.read_json(d / "meta.json")
        not_quoted = {}
        for case, header, config in [
            ("other config", {"config": "mlbert_e5_small.cfg", "encoder": encoder}, "train.cfg"),
            ("other encoder", {"config": "train.cfg", "encoder": "intfloat/multilingual-e5-small"}, "train.cfg"),
            ("no header", {}, "train.cfg"),
            ("no --config", {"config": "train.cfg", "encoder": encoder}, None),
        ]:
            path = benchmark_file(d / "b.md", **header)
            extra = ["--benchmark", str(path)] + (["--config", config] if config else [])
            done = card(model, metrics_path, d / "other.json", *extra)
            assert done.exit_code == 0, (case, done.output)
            not_quoted[case] = (srsly.read_json(d / "other.json")["notes"], done.output)
        (d / "bad.md").write_text(f"{BENCHMARK_PREFIX} {{config: x}} -->\n" + TABLE, encoding="utf8")
        bad = card(model, metrics_path, d / "bad.json", "--benchmark", str(d / "bad.md"), "--config", "x.cfg")
        missing = card(model, metrics_path, d / "nope.json", "--benchmark", str(d / "nope.md"))
    metrics = srsly.read_json(metrics_path)
    assert meta["name"] == "demo"
    assert meta["performance"]["cats_macro_f"] == metrics["overall"]["macro_f"]
    notes = meta["notes"]
    assert notes.index("## Model") < notes.index("## Evaluation") < notes.index("## Benchmark of this configuration")
    # the quoted file's headings nest under the card's section; its header line is not quoted
    assert "### Quality" in notes and "| eng | 0.5 |" in notes and BENCHMARK_PREFIX not in notes
    for case, (other_notes, output) in not_quoted.items():
        assert "## Evaluation" in other_notes and "Benchmark of this configuration" not in other_notes, case
        assert "W030" in output, case
    assert bad.exit_code == 1 and "E170" in bad.output
    assert missing.exit_code == 1 and "nope.md" in missing.output


def test_model_card_refuses_metrics_of_another_model(evaluated):
    model, metrics_path = evaluated
    metrics = srsly.read_json(metrics_path)
    label = metrics["labels"][0]
    metrics["thresholds"][label] = 0.123  # e.g. the untuned model's evaluation
    with make_tempdir() as d:
        srsly.write_json(d / "old.json", metrics)
        done = card(model, d / "old.json", d / "meta.json")
        assert not (d / "meta.json").exists()
    assert done.exit_code == 1 and "E171" in done.output


def test_model_card_leaves_no_meta_when_writing_fails(evaluated, monkeypatch):
    model, metrics_path = evaluated

    def write_half(path, data):
        Path(path).write_text('{"lang": "xx", "na', encoding="utf8")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(srsly, "write_json", write_half)
    with make_tempdir() as d:
        done = card(model, metrics_path, d / "meta.json")
        left = [p.name for p in d.iterdir()]
    assert done.exit_code == 1 and "E063" in done.output
    assert left == []


def test_spacy_package_builds_the_card_without_warnings(evaluated):
    """`spacy package` makes the description the wheel's summary: one line,
    or setuptools warns (and will refuse it)."""
    model, metrics_path = evaluated
    with make_tempdir() as d:
        done = card(model, metrics_path, d / "meta.json")
        assert done.exit_code == 0, done.output
        assert "\n" not in srsly.read_json(d / "meta.json")["description"]
        (d / "packages").mkdir()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # setuptools would note that it skips byte-compiling
        result = subprocess.run(
            [sys.executable, "-m", "spacy", "package", str(model), str(d / "packages"),
             "--meta-path", str(d / "meta.json"), "--build", "wheel", "--force"],
            capture_output=True, text=True, env=env,
        )
        wheels = list((d / "packages").glob("*/dist/*.whl"))
        licenses = (model / "LICENSES_SOURCES").read_text("utf8")
    output = result.stdout + result.stderr
    assert result.returncode == 0 and len(wheels) == 1, output[-3000:]
    warnings = [line for line in output.splitlines() if "warn" in line.lower() or "⚠" in line]
    assert warnings == [], warnings
    assert licenses.startswith(f"# {encoder_source(model)['name']}")
