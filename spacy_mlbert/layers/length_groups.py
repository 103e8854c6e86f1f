"""Run the encoder on windows of similar length, so that a batch pads each
window to its neighbours' length, not to the longest window of the batch.

spacy-transformers tokenizes every window of a batch (``nlp.pipe`` hands it
``batch_size`` documents at once) into one tensor padded to the longest
window and runs the encoder on it: one long text makes every short one pay
for its length. Here the encoder layer sorts the windows by wordpiece count,
runs consecutive groups of at most ``max_wordpieces`` (rows × padded length)
each trimmed to its own longest window, and puts the outputs back in the
batch's order and shape (positions past a window's end are zeros). The
gradient goes back group by group, so training gets the same saving.
Outputs equal the ungrouped ones to float rounding.
"""
from functools import partial
from typing import Any, Callable, List, Sequence, Tuple

import numpy
import torch
from spacy_transformers.data_classes import WordpieceBatch
from thinc.api import Model
from transformers.utils import ModelOutput


def group_by_length(layer: Model, max_wordpieces: int) -> None:
    """Make the encoder layer (a TransformerModel's ``layers[0]``) run its
    input in length groups of at most ``max_wordpieces``; 0 runs it whole.
    Calling it again (on a copy of the model) replaces the setting."""
    forward = layer._func
    if isinstance(forward, partial) and forward.func is _grouped_forward:
        forward = forward.args[0]
    layer._func = partial(_grouped_forward, forward, max_wordpieces) if max_wordpieces > 0 else forward


def length_groups(lengths: Sequence[int], max_wordpieces: int) -> List[numpy.ndarray]:
    """Row indices in groups: sorted by length, each group as many rows as fit
    in ``max_wordpieces`` once padded to its longest row (at least one)."""
    order = numpy.argsort(numpy.asarray(lengths), kind="stable")
    groups: List[List[int]] = []
    for row in order:
        length = max(int(lengths[row]), 1)
        if groups and (len(groups[-1]) + 1) * length <= max_wordpieces:
            groups[-1].append(int(row))
        else:
            groups.append([int(row)])
    return [numpy.asarray(group) for group in groups]


def _grouped_forward(
    forward: Callable, max_wordpieces: int, layer: Model, wordpieces: WordpieceBatch, is_train: bool
) -> Tuple[Any, Callable]:
    if len(wordpieces) < 2:
        return forward(layer, wordpieces, is_train)
    lengths = layer.ops.to_numpy(wordpieces.attention_mask).sum(axis=1).astype(int)
    full_length = wordpieces.input_ids.shape[1]
    groups = length_groups(lengths, max_wordpieces)
    if len(groups) == 1:  # it all fits: nothing to save, nothing to reorder
        return forward(layer, wordpieces, is_train)
    trimmed = [max(int(lengths[rows].max()), 1) for rows in groups]
    results = [forward(layer, _rows(wordpieces, rows, length), is_train) for rows, length in zip(groups, trimmed)]
    if any(_per_position_pair(value) for value in results[0][0].values()):
        return forward(layer, wordpieces, is_train)  # attention maps: not merged here
    output = _merge([out for out, _ in results], groups, len(wordpieces), full_length)

    def backprop(d_output: ModelOutput) -> List:
        for (_, group_backprop), rows, length in zip(results, groups, trimmed):
            group_backprop(_select(d_output, rows, length, full_length))
        return []

    return output, backprop


def _per_position_pair(value: Any) -> bool:
    """An output with a (wordpiece, wordpiece) axis pair, e.g. attentions."""
    if isinstance(value, tuple):
        return any(_per_position_pair(item) for item in value)
    return isinstance(value, torch.Tensor) and value.dim() >= 4


def _rows(wordpieces: WordpieceBatch, rows: numpy.ndarray, length: int) -> WordpieceBatch:
    # spacy-transformers keeps the wordpiece arrays on the CPU (numpy)
    token_type_ids = wordpieces.token_type_ids
    return WordpieceBatch(
        strings=[wordpieces.strings[row] for row in rows],
        input_ids=wordpieces.input_ids[rows, :length],
        attention_mask=wordpieces.attention_mask[rows, :length],
        lengths=[wordpieces.lengths[row] for row in rows],
        token_type_ids=token_type_ids[rows, :length] if token_type_ids is not None else None,
    )


def _merge(outputs: List[ModelOutput], groups: List[numpy.ndarray], n_rows: int, full_length: int) -> ModelOutput:
    """One output in the batch's row order and padded length."""
    merged = {}
    for key in outputs[0].keys():
        values = [out[key] for out in outputs]
        if isinstance(values[0], tuple):  # e.g. hidden_states, one tensor a layer
            merged[key] = tuple(_scatter(list(layer_values), groups, n_rows, full_length) for layer_values in zip(*values))
        else:
            merged[key] = _scatter(values, groups, n_rows, full_length)
    return type(outputs[0])(**merged)


def _scatter(parts: List[torch.Tensor], groups: List[numpy.ndarray], n_rows: int, full_length: int) -> torch.Tensor:
    first = parts[0]
    shape = list(first.shape)
    shape[0] = n_rows
    padded = first.dim() >= 3  # (rows, wordpieces, ...); pooled outputs are (rows, width)
    if padded:
        shape[1] = full_length
    result = first.new_zeros(shape)
    for part, rows in zip(parts, groups):
        index = torch.as_tensor(rows, device=first.device)
        if padded:
            result[index, : part.shape[1]] = part
        else:
            result[index] = part
    return result


def _select(d_output: ModelOutput, rows: numpy.ndarray, length: int, full_length: int) -> ModelOutput:
    """A group's share of the gradient: its rows, trimmed to its length."""
    selected = {}
    for key, value in d_output.items():
        index = torch.as_tensor(rows, device=value.device)
        part = value[index]
        if part.dim() >= 3 and part.shape[1] == full_length:
            part = part[:, :length]
        selected[key] = part.contiguous()
    return type(d_output)(**selected)
