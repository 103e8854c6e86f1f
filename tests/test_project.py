"""The project workflow end to end: convert → train → tune → evaluate → package,
then the wheel installed outside the project predicts like the trained model.

Slow: it trains (a tiny encoder, one epoch) and builds a wheel.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.util import load_config, make_tempdir
from weasel.cli.run import project_run

ROOT = Path(__file__).parent.parent


def _project_copy(tmp_dir: Path) -> Path:
    project = tmp_dir / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "corpus", project / "corpus", ignore=shutil.ignore_patterns("*.spacy"))
    return project


@pytest.mark.slow
def test_project_all_produces_model_report_and_installable_wheel(tiny_xlmr_dir):
    with make_tempdir() as tmp_dir:
        project = _project_copy(tmp_dir)
        # one short epoch so that the test stays quick; the config is the project's own
        config = load_config(project / "configs" / "mlbert_e5_small.cfg", interpolate=False)
        config["training"]["max_epochs"] = 1
        config["training"]["eval_frequency"] = 10
        config.to_disk(project / "configs" / "quick.cfg")
        overrides = {
            "vars.encoder": str(tiny_xlmr_dir),
            "vars.config": "configs/quick.cfg",
            "vars.name": "mlbert_test",
            "vars.version": "0.0.1",
        }
        for command in ("convert", "train", "tune-thresholds", "evaluate", "package"):
            project_run(project, command, overrides=overrides, capture=True)

        metrics = srsly.read_json(project / "metrics" / "metrics.json")
        assert set(metrics["per_language"]) == {"en", "es", "fr", "de", "zh", "ar", "ru", "hi"}
        assert "slow" not in metrics["per_language"]["ru"]["per_label"]  # never annotated for ru
        assert (project / "metrics" / "report" / "report.md").exists()
        assert list((project / "metrics" / "report").glob("*.png"))

        tuned = spacy.load(project / "training" / "model-tuned")
        wheels = list((project / "packages").glob("*/dist/*.whl"))
        assert len(wheels) == 1
        readme = (project / "packages" / "xx_mlbert_test-0.0.1" / "README.md").read_text("utf8")
        assert "Macro F1" in readme and "4-bit" not in readme  # tiny encoder: no e5 provenance

        # install the wheel outside the project and compare predictions
        site = tmp_dir / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheels[0])],
            check=True,
        )
        texts = ["Excelente producto, lo recomiendo.", "快递太慢了，很失望。", ""]
        code = (
            "import json, spacy, sys;"
            "nlp = spacy.load('xx_mlbert_test');"
            f"print(json.dumps([[d.cats, d._.mlbert_labels] for d in nlp.pipe({texts!r})]))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            cwd=tmp_dir,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        installed = json.loads(result.stdout.strip().splitlines()[-1])
        expected = [[doc.cats, doc._.mlbert_labels] for doc in tuned.pipe(texts)]
        assert installed == expected
