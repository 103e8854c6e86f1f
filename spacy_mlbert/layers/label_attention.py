"""Label attention: every label pools the wordpieces it attends to, and scores
its own pooled vector.

A mean over a document's wordpieces gives every label the same summary: a
short phrase that decides one label ("I was terrified") is averaged with
everything else. Here each label l has a learned query q_l; its attention
over the document's n wordpieces x_1..x_n is softmax_i(q_l · x_i / sqrt(d)),
its pooled vector p_l the attention-weighted sum of the x_i. p_l is
standardised (zero mean, unit variance over its d dimensions, as the layer
norm of ``MultiLabelClassifier.v2`` does for the mean), dropped out, and
scored by the label's own weights: logit_l = w_l · p_l + b_l.

The queries start at zero, where every label's attention is uniform: the
layer starts as mean pooling with one linear output per label, and learns to
look elsewhere only where that helps. With ``count_once`` it attends over
each wordpiece of the document once, as WordpieceListener.v2's mean counts
them (wordpiece_pooling.counted_rows), not over every row of overlapping
windows.
"""
from typing import Any, Callable, List, Optional, Tuple

import numpy
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model, glorot_uniform_init
from thinc.types import Floats2d
from transformers.file_utils import ModelOutput

from ..errors import Errors
from .wordpiece_pooling import pooled_rows

InT = List[TransformerData]
OutT = Floats2d

EPSILON = 1e-5


def LabelAttention(
    nO: Optional[int] = None,
    nI: Optional[int] = None,
    *,
    dropout: float = 0.1,
    count_once: bool = False,
) -> Model[InT, OutT]:
    """One logit per label from the transformer's wordpiece outputs.

    nO (Optional[int]): Number of labels, inferred at initialization if None.
    nI (Optional[int]): Width of the wordpiece vectors, inferred if None.
    dropout (float): Dropout rate on the standardised pooled vectors.
    count_once (bool): Attend over each wordpiece of the document once
        (counted_rows); False: over every unmasked row of every window
        (LabelAttentionClassifier.v1).
    RETURNS (Model[List[TransformerData], Floats2d]): Logits, (n_docs, nO).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(Errors.E150.format(value=dropout))
    return Model(
        "label_attention",
        forward,
        init=init,
        dims={"nO": nO, "nI": nI},
        params={"Q": None, "W": None, "b": None},
        attrs={"dropout_rate": dropout, "count_once": count_once},
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    if Y is not None and not model.has_dim("nO"):
        model.set_dim("nO", Y.shape[1])
    if X is not None and not model.has_dim("nI"):
        for trf_data in X:
            hidden, _ = _wordpieces(model, trf_data)
            if hidden is not None:
                model.set_dim("nI", hidden.shape[1])
                break
    nO, nI = model.get_dim("nO"), model.get_dim("nI")
    model.set_param("Q", model.ops.alloc2f(nO, nI))
    model.set_param("W", glorot_uniform_init(model.ops, (nO, nI)))
    model.set_param("b", model.ops.alloc1f(nO))


def _check_input(trf_data: TransformerData) -> None:
    if not isinstance(trf_data, TransformerData):
        raise ValueError(Errors.E008.format(type=type(trf_data).__name__))


def _wordpieces(model: Model[InT, OutT], trf_data: TransformerData) -> Tuple[Optional[Floats2d], Any]:
    """The document's unmasked wordpiece vectors, all windows in a row
    (n, width), and where they stand in the transformer's output (a boolean
    (windows, wordpieces) mask); (None, None) for a document without any."""
    _check_input(trf_data)
    if "last_hidden_state" not in trf_data.model_output:
        return None, None  # spacy-transformers gives empty docs no windows at all
    hidden = trf_data.model_output.last_hidden_state
    if not hidden.size:
        return None, None
    kept = model.ops.asarray(pooled_rows(trf_data, model.attrs.get("count_once", False)))[:, : hidden.shape[1]]
    return (hidden[kept], kept) if kept.any() else (None, None)


def forward(model: Model[InT, OutT], X: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    Q, W, b = model.get_param("Q"), model.get_param("W"), model.get_param("b")
    nO, nI = W.shape
    scale = 1.0 / float(numpy.sqrt(nI))
    rate = model.attrs["dropout_rate"] if is_train else 0.0
    Y = ops.alloc2f(len(X), nO)
    saved: List[Optional[tuple]] = []
    for i, trf_data in enumerate(X):
        x, kept = _wordpieces(model, trf_data)
        if x is None:
            saved.append(None)  # no wordpieces: the logits are the biases
            Y[i] = b
            continue
        x = ops.asarray2f(x)
        attention = _softmax_columns(ops, (x @ Q.T) * scale)  # (n, nO)
        pooled = attention.T @ x  # (nO, nI)
        mean = pooled.mean(axis=1, keepdims=True)
        inv_std = 1.0 / ops.xp.sqrt(pooled.var(axis=1, keepdims=True) + EPSILON)
        normed = (pooled - mean) * inv_std
        keep = ops.get_dropout_mask(normed.shape, rate) if rate else None
        dropped = normed * keep if keep is not None else normed
        Y[i] = (dropped * W).sum(axis=1) + b
        saved.append((x, kept, attention, normed, inv_std, keep, dropped))

    def backprop(dY: OutT) -> InT:
        dQ, dW, db = ops.alloc2f(nO, nI), ops.alloc2f(nO, nI), ops.alloc1f(nO)
        d_inputs: List[TransformerData] = []
        for trf_data, state, d_logits in zip(X, saved, dY):
            db += d_logits
            if state is None:
                if "last_hidden_state" in trf_data.model_output:
                    shape = trf_data.model_output.last_hidden_state.shape
                    d_inputs.append(_as_input(trf_data, ops.xp.zeros(shape, dtype="f")))
                continue
            x, kept, attention, normed, inv_std, keep, dropped = state
            dW += d_logits[:, None] * dropped
            d_normed = d_logits[:, None] * W
            if keep is not None:
                d_normed = d_normed * keep
            # layer-norm backward, per label over its nI dimensions
            d_pooled = inv_std * (
                d_normed
                - d_normed.mean(axis=1, keepdims=True)
                - normed * (d_normed * normed).mean(axis=1, keepdims=True)
            )
            d_attention = x @ d_pooled.T  # (n, nO)
            dx = attention @ d_pooled
            d_scores = attention * (d_attention - (d_attention * attention).sum(axis=0, keepdims=True))
            dQ += scale * (d_scores.T @ x)
            dx += scale * (d_scores @ Q)
            d_inputs.append(_scatter(ops, trf_data, kept, dx))
        model.inc_grad("Q", dQ)
        model.inc_grad("W", dW)
        model.inc_grad("b", db)
        return d_inputs

    return Y, backprop


def _softmax_columns(ops, scores: Floats2d) -> Floats2d:
    """Softmax over the wordpieces (rows), separately for every label (column)."""
    shifted = scores - scores.max(axis=0, keepdims=True)
    exp = ops.xp.exp(shifted)
    return exp / exp.sum(axis=0, keepdims=True)


def _scatter(ops, trf_data: TransformerData, kept, dx: Floats2d) -> TransformerData:
    """The gradient of the unmasked wordpieces (at ``kept``), put back in the
    shape of the transformer's output (masked positions get none)."""
    hidden = trf_data.model_output.last_hidden_state
    d_hidden = ops.xp.zeros(hidden.shape, dtype=hidden.dtype)
    d_hidden[kept] = dx
    return _as_input(trf_data, d_hidden)


def _as_input(trf_data: TransformerData, d_hidden) -> TransformerData:
    return TransformerData(
        model_output=ModelOutput(last_hidden_state=d_hidden),
        wordpieces=trf_data.wordpieces,
        align=trf_data.align,
    )


def resize_label_attention(model: Model[InT, OutT], new_nO: int) -> Model[InT, OutT]:
    """A copy of ``model`` with ``new_nO`` labels: the learned rows are kept,
    new labels start as untrained ones do (zero query, fresh weights). A new
    layer, not the old one resized: the optimizer's state for the old
    parameters has their old shape."""
    bigger = LabelAttention(
        new_nO,
        model.get_dim("nI") if model.has_dim("nI") else None,
        dropout=model.attrs["dropout_rate"],
        count_once=model.attrs.get("count_once", False),
    )
    if model.has_param("W") is not True:
        return bigger
    bigger.initialize()
    old_nO = model.get_dim("nO")
    for name in ("Q", "W", "b"):
        values = bigger.get_param(name).copy()
        values[:old_nO] = model.get_param(name)
        bigger.set_param(name, values)
    return bigger


