"""Dropout with several masks averaged (multi-sample dropout, Inoue 2019).

Each training step draws ``samples`` dropout masks for the document vector;
the linear output layer after it is shared, so averaging the logits of the
samples, as the usual implementation does, equals one pass with the mean of
the masks: the same expected dropout with less noise per step. One sample is
thinc's Dropout.
"""
from typing import Callable, Tuple

from thinc.api import Model
from thinc.types import Floats2d

from ..errors import Errors


def MultiSampleDropout(rate: float, samples: int) -> Model[Floats2d, Floats2d]:
    """rate (float): Each mask's dropout rate, in [0, 1).
    samples (int): Masks per step, averaged; >= 1.
    RETURNS (Model[Floats2d, Floats2d]): Identity at prediction time.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(Errors.E156.format(name="dropout", value=rate))
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(Errors.E156.format(name="dropout_samples", value=samples))
    return Model("multi_sample_dropout", _forward, attrs={"dropout_rate": rate, "samples": samples})


def _forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    rate = model.attrs["dropout_rate"]
    if not is_train or rate == 0.0:
        return X, lambda dY: dY
    ops = model.ops
    mask = ops.get_dropout_mask(X.shape, rate)
    for _ in range(model.attrs["samples"] - 1):
        mask = mask + ops.get_dropout_mask(X.shape, rate)
    mask = mask / model.attrs["samples"]

    def backprop(dY: Floats2d) -> Floats2d:
        return dY * mask

    return X * mask, backprop
