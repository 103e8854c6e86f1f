import numpy
import pytest
import torch
from thinc.api import NumpyOps

from spacy_mlbert.loss import masked_bce_with_logits

OPS = NumpyOps()


def _inputs(seed=0):
    rng = numpy.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(5, 4)).astype("f")
    truths = rng.integers(0, 2, size=(5, 4)).astype("f")
    return logits, truths


@pytest.mark.parametrize("pos_weight", [[1.0, 1.0, 1.0, 1.0], [2.0, 0.5, 10.0, 1.0]])
def test_loss_matches_torch_bce_with_logits(pos_weight):
    logits, truths = _inputs()
    known = numpy.ones_like(truths)
    weights = numpy.asarray(pos_weight, dtype="f")
    loss, d_logits = masked_bce_with_logits(OPS, logits, truths, known, weights)

    x = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        x, torch.tensor(truths), pos_weight=torch.tensor(weights)
    )
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    numpy.testing.assert_allclose(d_logits, x.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_loss_is_stable_for_extreme_logits():
    logits = numpy.asarray([[1000.0, -1000.0]], dtype="f")
    truths = numpy.asarray([[0.0, 1.0]], dtype="f")
    loss, d_logits = masked_bce_with_logits(
        OPS, logits, truths, numpy.ones_like(truths), numpy.ones(2, dtype="f")
    )
    assert numpy.isfinite(loss) and loss == pytest.approx(1000.0)
    assert numpy.all(numpy.isfinite(d_logits))


def test_loss_masks_unknown_cells():
    logits, truths = _inputs(1)
    known = numpy.ones_like(truths)
    known[:, 2] = 0.0
    loss, d_logits = masked_bce_with_logits(OPS, logits, truths, known, numpy.ones(4, dtype="f"))
    assert numpy.all(d_logits[:, 2] == 0.0)
    # changing the unknown column's truths changes nothing
    truths2 = truths.copy()
    truths2[:, 2] = 1.0 - truths2[:, 2]
    loss2, d2 = masked_bce_with_logits(OPS, logits, truths2, known, numpy.ones(4, dtype="f"))
    assert loss2 == loss
    numpy.testing.assert_array_equal(d2, d_logits)


def test_squared_error_loss_is_stock_textcats():
    """spacy-mlbert.squared_error_loss.v1: spaCy TextCategorizer.get_loss on
    the sigmoid of the logits (mean over every cell, gradient p - y on the
    known ones, not divided), passed back through the sigmoid."""
    from spacy.util import registry

    loss_fn = registry.losses.get("spacy-mlbert.squared_error_loss.v1")()
    logits = numpy.asarray([[0.5, -1.0, 2.0], [0.0, 3.0, -2.0]], dtype="f")
    truths = numpy.asarray([[1, 0, 0], [0, 1, 1]], dtype="f")
    known = numpy.asarray([[1, 1, 0], [1, 1, 1]], dtype="f")
    loss, d_logits = loss_fn(NumpyOps(), logits, truths, known, numpy.ones(3, dtype="f"))
    p = 1 / (1 + numpy.exp(-logits.astype("d")))
    d_scores = (p - truths) * known
    assert loss == pytest.approx((d_scores**2).mean())
    numpy.testing.assert_allclose(d_logits, d_scores * p * (1 - p), rtol=1e-5)
    assert d_logits[0, 2] == 0.0  # unknown: no gradient
    # through torch's autograd: the gradient of sum((sigmoid(x) - y)^2 / 2) on known cells
    x = torch.tensor(logits, requires_grad=True)
    ((torch.sigmoid(x) - torch.tensor(truths)) ** 2 * torch.tensor(known) / 2).sum().backward()
    numpy.testing.assert_allclose(d_logits, x.grad.numpy(), rtol=1e-5)
