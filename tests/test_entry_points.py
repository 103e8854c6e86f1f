"""Every name the package registers has an entry point, so that a config
naming it works in a process that has not imported spacy_mlbert."""
import importlib
import json
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path
from typing import Dict, Set, Tuple

import catalogue
import pytest
from spacy.util import registry

import spacy_mlbert  # noqa: F401  (registers the names)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# spaCy keeps factories in an internal registry; their entry points are "spacy_factories"
FACTORY_GROUP = "spacy_factories"


def _registered() -> Dict[Tuple[str, str], object]:
    """{(entry point group, name): function} for every name registered by spacy_mlbert."""
    found: Dict[Tuple[str, str], object] = {}
    for registry_name in registry.get_registry_names():
        reg = getattr(registry, registry_name)
        if not isinstance(reg, catalogue.Registry):
            continue
        group = FACTORY_GROUP if registry_name == "factories" else reg.entry_point_namespace
        for name, func in reg.get_all().items():
            if getattr(func, "__module__", "").split(".")[0] == "spacy_mlbert":
                found[(group, name)] = func
    return found


def _pyproject_entry_points() -> Dict[Tuple[str, str], str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))
    groups = data["project"]["entry-points"]
    return {
        (group, name): target
        for group, entries in groups.items()
        if group.startswith(("spacy_", "thinc_"))
        for name, target in entries.items()
    }


REGISTERED = _registered()
DECLARED = _pyproject_entry_points()


def test_the_package_registers_the_expected_kinds_of_names():
    groups = {group for group, _ in REGISTERED}
    assert {FACTORY_GROUP, "spacy_architectures", "spacy_scorers", "thinc_schedules"} <= groups
    assert (FACTORY_GROUP, "mlbert_textcat") in REGISTERED
    assert ("spacy_architectures", "spacy-mlbert.MultiLabelClassifier.v2") in REGISTERED


def test_every_registered_name_has_an_entry_point_and_no_more():
    missing: Set[Tuple[str, str]] = set(REGISTERED) - set(DECLARED)
    stale: Set[Tuple[str, str]] = set(DECLARED) - set(REGISTERED)
    assert not missing, f"registered without an entry point in pyproject.toml: {sorted(missing)}"
    assert not stale, f"entry points in pyproject.toml that register nothing: {sorted(stale)}"


@pytest.mark.parametrize("key", sorted(DECLARED), ids=lambda key: f"{key[0]}:{key[1]}")
def test_entry_point_object_is_the_registered_function(key):
    module_name, _, attr = DECLARED[key].partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert key in REGISTERED
    assert obj is REGISTERED[key]


def _installed_from_this_tree():
    """The distribution installed (editable or not) from this source tree, or None."""
    for dist in distributions():
        if (dist.metadata["Name"] or "").lower().replace("_", "-") != "spacy-mlbert":
            continue
        text = dist.read_text("direct_url.json")
        if text and json.loads(text).get("url", "").rstrip("/") == ROOT.as_uri():
            return dist
    return None


INSTALLED = _installed_from_this_tree()


@pytest.mark.skipif(INSTALLED is None, reason="spacy-mlbert is not installed from this source tree")
def test_installed_distribution_has_the_entry_points_of_pyproject():
    installed = {
        (ep.group, ep.name): ep.value
        for ep in INSTALLED.entry_points
        if ep.group.startswith(("spacy_", "thinc_"))
    }
    assert installed == DECLARED


@pytest.mark.skipif(INSTALLED is None, reason="spacy-mlbert is not installed from this source tree")
def test_entry_points_resolve_without_import():
    """A fresh process finds the factory, the default head and the schedule
    through the entry points alone."""
    code = (
        "import sys, spacy; from spacy.util import registry;"
        "assert 'spacy_mlbert' not in sys.modules;"
        "registry.architectures.get('spacy-mlbert.MultiLabelClassifier.v2');"
        "registry.schedules.get('spacy-mlbert.warmup_linear_epochs.v1');"
        "nlp = spacy.blank('xx'); nlp.add_pipe('mlbert_textcat');"
        "assert 'spacy_mlbert' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
