"""Layer-wise learning-rate decay (spacy-mlbert.AdamLayerDecay.v1) and the
optimizer's weight averages reaching the encoder (use_averages)."""
import numpy
import pytest
from spacy.util import fix_random_seed, registry
from thinc.api import Adam, torch2xp

from spacy_mlbert.optimizers import layer_rate_scale
from util import make_examples, make_nlp


@pytest.mark.parametrize(
    "name,scale",
    [
        ("encoder.layer.11.output.dense.weight", 1.0),
        ("transformer.encoder.layer.10.attention.self.query.bias", 0.5),
        ("encoder.layer.0.intermediate.dense.weight", 0.5**11),
        ("embeddings.LayerNorm.weight", 0.5**12),
        ("pooler.dense.weight", 1.0),
        ("W", 1.0),
    ],
)
def test_layer_rate_scale_follows_the_depth(name, scale):
    assert layer_rate_scale(name, 0.5, 12) == pytest.approx(scale)
    assert layer_rate_scale(name, 1.0, 12) == 1.0


def test_layer_decay_scales_each_weights_step():
    optimizer = registry.resolve({"o": {"@optimizers": "spacy-mlbert.AdamLayerDecay.v1", "learn_rate": 0.1, "layer_decay": 0.5, "layers": 2, "L2": 0.0}})["o"]
    plain = Adam(0.1, L2=0.0, use_averages=False)
    steps = {}
    for name in ("encoder.layer.0.w", "encoder.layer.1.w", "embeddings.w", "W"):
        weights, gradient = numpy.ones(4, dtype="f"), numpy.full(4, 0.3, dtype="f")
        updated, _ = optimizer((1, name), weights.copy(), gradient.copy())
        reference, _ = plain((1, name), weights.copy(), gradient.copy())
        steps[name] = float((1 - updated[0]) / (1 - reference[0]))
    assert steps == pytest.approx({"encoder.layer.0.w": 0.5, "encoder.layer.1.w": 1.0, "embeddings.w": 0.25, "W": 1.0})


@pytest.mark.parametrize("settings,code", [({"layer_decay": 0.0}, "E154"), ({"layer_decay": 1.5}, "E154"), ({"layers": 0}, "E155")])
def test_layer_decay_coded_errors(settings, code):
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        registry.resolve({"o": {"@optimizers": "spacy-mlbert.AdamLayerDecay.v1", **settings}})


def test_averaged_weights_reach_the_encoder(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir)
    examples = make_examples(nlp)
    optimizer = Adam(0.01, use_averages=True)
    nlp.initialize(get_examples=lambda: examples, sgd=optimizer)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    name, param = next((n, p) for n, p in shim._model.named_parameters() if (shim.id, n) in optimizer.averages)
    live = torch2xp(param.data).copy()
    average = optimizer.averages[(shim.id, name)]
    assert not numpy.allclose(live, average)
    text = "I love this, it is great"
    before = nlp(text).cats
    with nlp.use_params(optimizer.averages):
        numpy.testing.assert_allclose(torch2xp(param.data), average, rtol=1e-6)
        averaged = nlp(text).cats
    numpy.testing.assert_array_equal(torch2xp(param.data), live)
    assert averaged != before
    assert nlp(text).cats == before
