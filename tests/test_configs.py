from pathlib import Path

import catalogue
import pytest
from spacy import util
from thinc.api import ConfigValidationError

CONFIG_DIR = Path(__file__).parent.parent / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.cfg"))


def test_configs_exist_for_the_three_encoders():
    names = {path.name for path in CONFIGS}
    assert {
        "mlbert_e5_small.cfg",
        "mlbert_xlm_roberta_base.cfg",
        "mlbert_bert_base_multilingual_cased.cfg",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_configs_are_valid(path):
    config = util.load_config(path, interpolate=False)
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "mlbert_textcat"]
    assert nlp.config["training"]["score_weights"]["cats_macro_f"] == 1.0


def test_configs_differ_only_in_encoder():
    base = util.load_config(CONFIG_DIR / "mlbert_e5_small.cfg", interpolate=False)
    for path in CONFIGS:
        config = util.load_config(path, interpolate=False)
        config["paths"]["encoder"] = base["paths"]["encoder"]
        assert config == base, path.name


def test_configs_unknown_architecture_is_a_registry_error():
    config = util.load_config(CONFIGS[0], interpolate=False)
    config["components"]["mlbert_textcat"]["model"]["@architectures"] = "spacy-mlbert.Nope.v1"
    with pytest.raises(catalogue.RegistryError):
        util.load_model_from_config(config, auto_fill=True, validate=True)


def test_configs_unexpected_argument_is_a_validation_error():
    config = util.load_config(CONFIGS[0], interpolate=False)
    config["components"]["mlbert_textcat"]["model"]["bogus"] = 1
    with pytest.raises(ConfigValidationError):
        util.load_model_from_config(config, auto_fill=True, validate=True)
