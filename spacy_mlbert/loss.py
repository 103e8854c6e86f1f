"""Binary cross-entropy on logits, with a mask for unknown labels.

Computed from the logits directly (softplus form), never as log(sigmoid(x)),
so very confident logits neither overflow nor give log(0).
"""
from typing import Tuple

from thinc.api import Ops
from thinc.types import Floats1d, Floats2d


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
