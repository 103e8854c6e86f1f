"""spacy-mlbert.asymmetric_loss.v1 against a torch autograd reference."""
import numpy
import pytest
import spacy
import torch
from spacy.util import fix_random_seed, registry
from thinc.api import NumpyOps

from spacy_mlbert.loss import masked_bce_with_logits
from util import make_examples, make_nlp

OPS = NumpyOps()


def _torch_asl(logits, truths, known, pos_weight, gamma_pos, gamma_neg, clip):
    """The loss of Ridnik et al. (2021) written with torch ops, for autograd."""
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(truths, dtype=torch.float64)
    p = torch.sigmoid(x)
    p_m = torch.clamp(p - clip, min=0.0)
    pos = -((1 - p) ** gamma_pos) * torch.nn.functional.logsigmoid(x) * torch.tensor(pos_weight, dtype=torch.float64)
    neg = -(p_m**gamma_neg) * torch.log(torch.clamp(1 - p_m, min=1e-7))
    mask = torch.tensor(known, dtype=torch.float64)
    loss = ((y * pos + (1 - y) * neg) * mask).sum() / max(mask.sum().item(), 1.0)
    loss.backward()
    return loss.item(), x.grad.numpy()


@pytest.mark.parametrize(
    "gamma_pos,gamma_neg,clip", [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (0.0, 1.0, 0.2), (2.0, 0.0, 0.0)]
)
def test_asymmetric_loss_matches_torch(gamma_pos, gamma_neg, clip):
    rng = numpy.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(6, 5)).astype("f")
    truths = rng.integers(0, 2, size=(6, 5)).astype("f")
    known = (rng.random((6, 5)) > 0.2).astype("f")
    pos_weight = numpy.asarray([1.0, 2.0, 0.5, 1.0, 3.0], dtype="f")
    loss_fn = registry.losses.get("spacy-mlbert.asymmetric_loss.v1")(
        gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip
    )
    loss, d_logits = loss_fn(OPS, logits, truths, known, pos_weight)
    expected, grad = _torch_asl(logits, truths, known, pos_weight, gamma_pos, gamma_neg, clip)
    assert loss == pytest.approx(expected, rel=1e-4)
    numpy.testing.assert_allclose(d_logits, grad, rtol=1e-3, atol=1e-6)
    # unknown cells get no gradient
    assert numpy.all(d_logits[known == 0] == 0)


def test_asymmetric_loss_at_zero_is_bce():
    rng = numpy.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(4, 3)).astype("f")
    truths = rng.integers(0, 2, size=(4, 3)).astype("f")
    known = numpy.ones_like(truths)
    weights = numpy.ones(3, dtype="f")
    asl = registry.losses.get("spacy-mlbert.asymmetric_loss.v1")(gamma_pos=0, gamma_neg=0, clip=0)
    loss, grad = asl(OPS, logits, truths, known, weights)
    bce_loss, bce_grad = masked_bce_with_logits(OPS, logits, truths, known, weights)
    assert loss == pytest.approx(bce_loss, rel=1e-5)
    numpy.testing.assert_allclose(grad, bce_grad, rtol=1e-4, atol=1e-7)


def test_asymmetric_loss_ignores_easy_negatives():
    # a negative below the clip margin adds neither loss nor gradient
    asl = registry.losses.get("spacy-mlbert.asymmetric_loss.v1")(clip=0.05)
    logits = numpy.asarray([[-4.0]], dtype="f")  # p = 0.018
    loss, grad = asl(OPS, logits, numpy.zeros((1, 1), "f"), numpy.ones((1, 1), "f"), numpy.ones(1, "f"))
    assert loss == 0.0 and grad[0, 0] == 0.0


@pytest.mark.parametrize("kwargs", [{"gamma_neg": -1.0}, {"gamma_pos": -0.5}, {"clip": 1.0}])
def test_asymmetric_loss_bad_settings(kwargs):
    with pytest.raises(ValueError, match="E120"):
        registry.losses.get("spacy-mlbert.asymmetric_loss.v1")(**kwargs)


def test_component_trains_with_configured_loss(tiny_xlmr_dir, tmp_path):
    fix_random_seed(0)
    loss_cfg = {"@losses": "spacy-mlbert.asymmetric_loss.v1", "gamma_neg": 2.0, "clip": 0.05}
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"loss": loss_cfg})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["mlbert_textcat"] for _ in range(20)]
    assert losses[-1] < losses[0]
    textcat = nlp.get_pipe("mlbert_textcat")
    assert textcat.loss is not masked_bce_with_logits
    nlp.to_disk(tmp_path / "m")
    saved = spacy.load(tmp_path / "m").config["components"]["mlbert_textcat"]["loss"]
    assert saved == {**loss_cfg, "gamma_pos": 0.0}


def test_default_loss_is_bce(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    assert nlp.get_pipe("mlbert_textcat").loss is masked_bce_with_logits
    assert nlp.config["components"]["mlbert_textcat"]["loss"] == {"@losses": "spacy-mlbert.bce_loss.v1"}
