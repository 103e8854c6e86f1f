"""Pool a transformer's wordpiece outputs into one vector per document.

spacy-transformers' own listener first averages wordpieces into spaCy tokens.
That is wrong for a classifier: a Chinese sentence that the ``xx`` tokenizer
keeps as one token would reach the head as one averaged token, and the
``cls`` wordpiece would be mixed into the first token. This layer reads the
wordpiece tensors (``last_hidden_state`` of every window of the document)
directly and passes gradients straight back to them.

Strided windows overlap, so the wordpieces of an overlap (about 126 of
every 510 with the shipped windows) are encoded twice, and every window
brings its own special tokens. ``count_once`` makes the mean count each
wordpiece of the document once (``counted_rows``): each spaCy token's
wordpieces are read from the window where the token has the most context
on both sides (so overlaps are split at their middle), the opening special
tokens (and an input prefix) from the first window and the closing ones
from the last.
"""
from typing import Callable, List, Optional, Tuple

import numpy
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model
from thinc.types import Floats2d, Floats3d
from transformers.file_utils import ModelOutput

from ..errors import Errors

InT = List[TransformerData]
OutT = Floats2d

POOLINGS = ("cls", "mean")


def WordpiecePooling(pooling: str, *, grad_factor: float = 1.0, count_once: bool = False) -> Model[InT, OutT]:
    """Reduce each document's wordpiece vectors to one vector.

    pooling (str): "cls", the first wordpiece of the document (the classic BERT
        classifier input), or "mean", the attention-masked mean over all
        wordpieces of all windows of the document.
    grad_factor (float): Scales the gradient passed back to the transformer.
    count_once (bool): For "mean": each wordpiece of the document counts once,
        however many windows encoded it, and its special tokens once per
        document (``counted_rows``). False: every row of every window counts
        (WordpieceListener.v1). A document of one window gets the same vector.
    RETURNS (Model[List[TransformerData], Floats2d]): One row per document.
    """
    if pooling not in POOLINGS:
        raise ValueError(Errors.E001.format(pooling=pooling, options=", ".join(POOLINGS)))
    return Model(
        f"wordpiece_{pooling}_pooling",
        forward,
        init=init,
        dims={"nO": None},
        attrs={"pooling": pooling, "grad_factor": grad_factor, "count_once": count_once},
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
            mask = ops.asarray2f(pooled_rows(trf_data, model.attrs.get("count_once", False)))
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


def pooled_rows(trf_data: TransformerData, count_once: bool) -> numpy.ndarray:
    """The rows of a document's windows that its pooling reads: each
    wordpiece once (counted_rows), or every unmasked row of every window.

    trf_data (TransformerData): One document's windows (not empty).
    count_once (bool): The layer's ``count_once`` setting.
    RETURNS (numpy.ndarray): (windows, wordpieces) booleans, False at padding.
    """
    if count_once:
        return counted_rows(trf_data)
    return numpy.asarray(trf_data.wordpieces.attention_mask) > 0


def counted_rows(trf_data: TransformerData) -> numpy.ndarray:
    """Which rows of a document's windows enter a mean that counts each of
    its wordpieces once.

    A wordpiece row belongs to the last spaCy token it is aligned with (as the
    span getter counts them: the token that holds its last character), and a
    row aligned with none inside a window (none of SentencePiece's lone "▁"
    usually) to the token of the next aligned row. Each token is read in
    one window: the one where its wordpieces are farthest from either end
    (the most context on both sides; the earlier window on a tie), which
    splits an overlap of regular windows at its middle. The rows before a
    window's first aligned row (``<s>``/``[CLS]``, an input prefix) count in
    the first window only, those after its last one (``</s>``/``[SEP]``) in
    the last window only. With one window, every unmasked row counts.

    trf_data (TransformerData): One document's windows (not empty).
    RETURNS (numpy.ndarray): (windows, wordpieces) booleans, False at padding.
    """
    mask = numpy.asarray(trf_data.wordpieces.attention_mask) > 0
    n_windows, length = mask.shape
    if n_windows == 1:
        return mask
    align = trf_data.align
    lengths = numpy.asarray(align.lengths, dtype="i")
    rows = numpy.asarray(align.dataXd, dtype="i").reshape((-1,))
    tokens = numpy.repeat(numpy.arange(lengths.size, dtype="i"), lengths)
    row_token = numpy.full((n_windows * length,), -1, dtype="i")
    numpy.maximum.at(row_token, rows, tokens)
    # rows aligned with no token take the next aligned row's token; the ones
    # before the first and after the last aligned row are the window's edges
    row_token = row_token.reshape((n_windows, length))
    positions = numpy.arange(length)
    aligned = row_token >= 0
    after = numpy.minimum.accumulate(numpy.where(aligned, positions, length)[:, ::-1], axis=1)[:, ::-1]
    before = numpy.maximum.accumulate(numpy.where(aligned, positions, -1), axis=1)
    leading, trailing = before < 0, after >= length
    inside = ~leading & ~trailing
    window_of_row = numpy.repeat(numpy.arange(n_windows)[:, None], length, axis=1)
    row_token = numpy.where(inside, row_token[window_of_row, numpy.minimum(after, length - 1)], -1)
    # each token's window: the largest distance of its rows to either end
    # (unmasked length) of a window
    windows, places = numpy.divmod(rows, length)
    pairs, pair_of = numpy.unique(tokens.astype("i8") * n_windows + windows, return_inverse=True)
    first = numpy.full(pairs.shape, length, dtype="i")
    last = numpy.full(pairs.shape, -1, dtype="i")
    numpy.minimum.at(first, pair_of, places)
    numpy.maximum.at(last, pair_of, places)
    pair_token, pair_window = numpy.divmod(pairs, n_windows)
    context = numpy.minimum(first, mask.sum(axis=1)[pair_window] - 1 - last)
    order = numpy.lexsort((pair_window, -context, pair_token))
    first_of_token = numpy.ones(order.shape, dtype=bool)
    first_of_token[1:] = pair_token[order][1:] != pair_token[order][:-1]
    best = order[first_of_token]
    owner = numpy.full((lengths.size,), -1, dtype="i")
    owner[pair_token[best]] = pair_window[best]
    counted = (row_token >= 0) & (owner[numpy.maximum(row_token, 0)] == window_of_row)
    counted |= leading & (window_of_row == 0)
    counted |= trailing & (window_of_row == n_windows - 1)
    return counted & mask
