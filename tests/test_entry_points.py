from importlib.metadata import distribution

import catalogue
import pytest
from spacy.language import Language
from spacy.util import registry

import spacy_mlbert  # noqa: F401

ENTRY_POINTS = [
    ep
    for ep in distribution("spacy-mlbert").entry_points
    if ep.group.startswith(("spacy_", "thinc_"))
]


def test_entry_points_cover_factory_architectures_and_scorer():
    groups = {ep.group for ep in ENTRY_POINTS}
    assert {"spacy_factories", "spacy_architectures", "spacy_scorers"} <= groups


@pytest.mark.parametrize("ep", ENTRY_POINTS, ids=lambda ep: f"{ep.group}:{ep.name}")
def test_entry_point_matches_registered_name(ep):
    func = ep.load()
    if ep.group == "spacy_factories":
        assert Language.has_factory(ep.name)
        assert Language.get_factory_meta(ep.name).factory == ep.name
    else:
        namespace, registry_name = ep.group.split("_", 1)
        # the decorator used the same name as the entry point
        assert catalogue.check_exists(namespace, registry_name, ep.name)
        assert registry.get(registry_name, ep.name) is func


def test_entry_points_resolve_without_import():
    """A fresh process finds the factory through the entry point alone."""
    import subprocess
    import sys

    code = (
        "import spacy; nlp = spacy.blank('xx'); nlp.add_pipe('mlbert_textcat');"
        "from spacy.util import registry;"
        "registry.architectures.get('spacy-mlbert.MultiLabelClassifier.v1');"
        "import sys; assert 'spacy_mlbert' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
