"""Pool a transformer's wordpiece outputs into one vector per document.

spacy-transformers' own listener first averages wordpieces into spaCy tokens.
That is wrong for a classifier: a Chinese sentence that the ``xx`` tokenizer
keeps as one token would reach the head as one averaged token, and the
``cls`` wordpiece would be mixed into the first token. This layer reads the
wordpiece tensors (``last_hidden_state`` of every window of the document)
directly and passes gradients straight back to them.
"""
from typing import Callable, List, Optional, Tuple

from spacy_transformers.data_classes import TransformerData
from thinc.api import Model
from thinc.types import Floats2d, Floats3d
from transformers.file_utils import ModelOutput

from ..errors import Errors

InT = List[TransformerData]
OutT = Floats2d

POOLINGS = ("cls", "mean")


def WordpiecePooling(pooling: str, *, grad_factor: float = 1.0) -> Model[InT, OutT]:
    """Reduce each document's wordpiece vectors to one vector.

    pooling (str): "cls", the first wordpiece of the document (the classic BERT
        classifier input), or "mean", the attention-masked mean over all
        wordpieces of all windows of the document.
    grad_factor (float): Scales the gradient passed back to the transformer.
    RETURNS (Model[List[TransformerData], Floats2d]): One row per document.
    """
    if pooling not in POOLINGS:
        raise ValueError(Errors.E001.format(pooling=pooling, options=", ".join(POOLINGS)))
    return Model(
        f"wordpiece_{pooling}_pooling",
        forward,
        init=init,
        dims={"nO": None},
        attrs={"pooling": pooling, "grad_factor": grad_factor},
    )


def _hidden(trf_data: TransformerData) -> Optional[Floats3d]:
    """The (windows, wordpieces, width) output, or None for an empty document."""
    if not isinstance(trf_data, TransformerData):
        raise ValueError(Errors.E008.format(type=type(trf_data).__name__))
    if "last_hidden_state" not in trf_data.model_output:
        return None  # spacy-transformers gives empty docs no windows at all
    hidden = trf_data.model_output.last_hidden_state
    return hidden if hidden.size else None


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    if X is not None and not model.has_dim("nO"):
        for trf_data in X:
            hidden = _hidden(trf_data)
            if hidden is not None:
                model.set_dim("nO", hidden.shape[-1])
                break


def forward(model: Model[InT, OutT], X: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    pooling = model.attrs["pooling"]
    hiddens = [_hidden(trf_data) for trf_data in X]
    width = _width(model, hiddens)
    Y = ops.alloc2f(len(X), width)
    # Per document, the weight of each wordpiece in the pooled vector: the
    # backward pass is then the same outer product for both poolings.
    weights: List[Optional[Floats2d]] = []
    for i, (trf_data, hidden) in enumerate(zip(X, hiddens)):
        if hidden is None:
            weights.append(None)  # an empty document pools to the zero vector
            continue
        if pooling == "cls":
            weight = ops.alloc2f(hidden.shape[0], hidden.shape[1])
            weight[0, 0] = 1.0
        else:
            mask = ops.asarray2f(trf_data.wordpieces.attention_mask)
            mask = mask[:, : hidden.shape[1]]
            weight = mask / max(float(mask.sum()), 1.0)
        Y[i] = (hidden * weight[:, :, None]).sum(axis=(0, 1))
        weights.append(weight)

    def backprop(dY: OutT) -> InT:
        grad_factor = model.attrs["grad_factor"]
        d_trf_datas: List[TransformerData] = []
        for trf_data, hidden, weight, d_row in zip(X, hiddens, weights, dY):
            if "last_hidden_state" not in trf_data.model_output:
                # The transformer made no windows for this doc: nothing to send back
                # (the same convention as spacy-transformers' trfs2arrays).
                continue
            if weight is None:
                d_hidden = ops.alloc(trf_data.model_output.last_hidden_state.shape, dtype="f")
            else:
                d_hidden = weight[:, :, None] * (d_row * grad_factor)[None, None, :]
                d_hidden = d_hidden.astype(hidden.dtype, copy=False)
            d_trf_datas.append(
                TransformerData(
                    model_output=ModelOutput(last_hidden_state=d_hidden),
                    wordpieces=trf_data.wordpieces,
                    align=trf_data.align,
                )
            )
        return d_trf_datas

    return Y, backprop


def _width(model: Model[InT, OutT], hiddens: List[Optional[Floats3d]]) -> int:
    for hidden in hiddens:
        if hidden is not None:
            if not model.has_dim("nO"):
                model.set_dim("nO", hidden.shape[-1])
            return hidden.shape[-1]
    # A batch of only empty documents: fall back on the width set at init.
    return model.get_dim("nO") if model.has_dim("nO") else 0
