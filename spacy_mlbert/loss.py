"""Losses on logits with a mask for unknown labels, registered so that a
config can choose one (``[components.mlbert_textcat.loss]``).

Every loss takes ``(ops, logits, truths, known, pos_weight)`` and returns the
mean loss over the known (doc, label) cells and its gradient with respect to
the logits. Unknown cells add no loss and no gradient. They are computed from
the logits directly (softplus form), never as log(sigmoid(x)), so very
confident logits neither overflow nor give log(0).
"""
from typing import Callable, Tuple

from spacy.util import registry
from thinc.api import Ops
from thinc.types import Floats1d, Floats2d

LossFunction = Callable[[Ops, Floats2d, Floats2d, Floats2d, Floats1d], Tuple[float, Floats2d]]

# 1 - p_m is kept above this, so that log(1 - p_m) stays finite without a margin
_MIN_PROB = 1e-7


@registry.losses("spacy-mlbert.bce_loss.v1")
def make_bce_loss() -> LossFunction:
    """Binary cross-entropy on logits (the default)."""
    return masked_bce_with_logits


@registry.losses("spacy-mlbert.asymmetric_loss.v1")
def make_asymmetric_loss(gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05) -> LossFunction:
    """Asymmetric loss (Ridnik et al., "Asymmetric Loss For Multi-Label
    Classification", ICCV 2021): the negative term is focused by
    ``p_m ** gamma_neg`` with ``p_m = max(p - clip, 0)``, so the many easy
    negatives of a multi-label data set stop dominating the gradient, and
    negatives with ``p < clip`` (often missing positives) add nothing; the
    positive term is focused by ``(1 - p) ** gamma_pos``. With all three at
    0 it is binary cross-entropy.

    gamma_pos (float): Focusing exponent of the positive term (>= 0).
    gamma_neg (float): Focusing exponent of the negative term (>= 0).
    clip (float): Probability margin shifted off the negatives, in [0, 1).
    """
    from .errors import Errors

    if gamma_pos < 0 or gamma_neg < 0 or not 0.0 <= clip < 1.0:
        raise ValueError(Errors.E120.format(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip))

    def asymmetric_loss(ops, logits, truths, known, pos_weight):
        return masked_asymmetric_loss(
            ops, logits, truths, known, pos_weight,
            gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
        )

    return asymmetric_loss


@registry.losses("spacy-mlbert.squared_error_loss.v1")
def make_squared_error_loss() -> LossFunction:
    """Stock ``textcat_multilabel``'s loss: squared error of the
    probabilities, its gradient ``p - y`` on the known cells, not divided by
    their number (as spaCy's TextCategorizer.get_loss), then through the
    sigmoid. For comparing the head apart from the loss; ``pos_weight``
    scales the positive cells' gradient as it does BCE's."""
    return masked_squared_error


def masked_squared_error(
    ops: Ops,
    logits: Floats2d,
    truths: Floats2d,
    known: Floats2d,
    pos_weight: Floats1d,
) -> Tuple[float, Floats2d]:
    """Mean squared error of sigmoid(logits) over all cells, unknown ones
    counted as 0 (spaCy's ``(d_scores**2).mean()``), and d_loss/d_logits as
    spaCy passes it on: ``(p - y) * known``, times ``p (1 - p)`` (arguments
    as in ``masked_bce_with_logits``)."""
    p = ops.sigmoid(logits)
    weight = 1.0 + (pos_weight[None, :] - 1.0) * truths
    d_probs = (p - truths) * known * weight
    loss = float((((p - truths) * known) ** 2).mean()) if d_probs.size else 0.0
    return loss, (d_probs * p * (1.0 - p)).astype("f")


def masked_bce_with_logits(
    ops: Ops,
    logits: Floats2d,
    truths: Floats2d,
    known: Floats2d,
    pos_weight: Floats1d,
) -> Tuple[float, Floats2d]:
    """Mean binary cross-entropy over the known (doc, label) cells and its gradient.

    ops (Ops): The ops of the model (numpy or cupy arrays).
    logits (Floats2d): (n_docs, n_labels) raw scores.
    truths (Floats2d): (n_docs, n_labels) 0/1 gold values.
    known (Floats2d): (n_docs, n_labels) 1 where the gold value is annotated,
        0 where it is unknown: unknown cells add no loss and no gradient.
    pos_weight (Floats1d): (n_labels,) weight of the positive term per label,
        as in torch's BCEWithLogitsLoss.
    RETURNS (Tuple[float, Floats2d]): The loss and d_loss/d_logits.
    """
    xp = ops.xp
    weight = 1.0 + (pos_weight[None, :] - 1.0) * truths
    # -log(sigmoid(x)) = softplus(-x);  -log(1 - sigmoid(x)) = softplus(-x) + x
    softplus_neg = xp.logaddexp(0.0, -logits)
    cell_loss = pos_weight[None, :] * truths * softplus_neg + (1.0 - truths) * (
        softplus_neg + logits
    )
    n_known = max(float(known.sum()), 1.0)
    loss = float((cell_loss * known).sum()) / n_known
    d_logits = (ops.sigmoid(logits) * weight - pos_weight[None, :] * truths) * known
    return loss, (d_logits / n_known).astype("f")


def masked_asymmetric_loss(
    ops: Ops,
    logits: Floats2d,
    truths: Floats2d,
    known: Floats2d,
    pos_weight: Floats1d,
    *,
    gamma_pos: float,
    gamma_neg: float,
    clip: float,
) -> Tuple[float, Floats2d]:
    """Mean asymmetric loss over the known cells and its gradient (arguments
    as in ``masked_bce_with_logits``; see ``make_asymmetric_loss``)."""
    xp = ops.xp
    p = ops.sigmoid(logits)
    log_p = -xp.logaddexp(0.0, -logits)
    # positive cells: -(1 - p)^g+ log p
    focus_pos = (1.0 - p) ** gamma_pos
    loss_pos = -focus_pos * log_p
    d_pos = focus_pos * (gamma_pos * p * log_p - (1.0 - p))
    # negative cells: -p_m^g- log(1 - p_m), p_m = max(p - clip, 0)
    p_m = xp.maximum(p - clip, 0.0)
    if clip > 0:
        log_not_pm = xp.log(xp.maximum(1.0 - p_m, _MIN_PROB))
    else:  # log(1 - p) = -softplus(x), exact for confident logits
        log_not_pm = -xp.logaddexp(0.0, logits)
    focus_neg = p_m**gamma_neg
    loss_neg = -focus_neg * log_not_pm
    # d/dp_m of the negative term, times dp_m/dx = p (1 - p) where p > clip
    safe_pm = xp.where(p_m > 0, p_m, 1.0)
    d_focus = gamma_neg * safe_pm ** (gamma_neg - 1.0) if gamma_neg else 0.0
    d_neg_dpm = focus_neg / xp.maximum(1.0 - p_m, _MIN_PROB) - d_focus * log_not_pm
    d_neg = xp.where(p > clip, d_neg_dpm * p * (1.0 - p), 0.0)
    weight = pos_weight[None, :]
    cell_loss = truths * weight * loss_pos + (1.0 - truths) * loss_neg
    n_known = max(float(known.sum()), 1.0)
    loss = float((cell_loss * known).sum()) / n_known
    d_logits = (truths * weight * d_pos + (1.0 - truths) * d_neg) * known
    return loss, (d_logits / n_known).astype("f")
