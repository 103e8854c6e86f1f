"""Adam with layer-wise learning-rate decay for fine-tuning an encoder.

The lower layers of a pre-trained encoder hold general features that a small
labelled set should change least: each encoder layer's rate is the one above
it times ``layer_decay`` (Howard and Ruder 2018; Clark et al., ELECTRA 2020).
thinc's optimizer takes a per-call ``lr_scale``; PyTorch weights reach it
keyed by their parameter name (``encoder.layer.3.attention...``), from which
the layer is read. Everything else (the classifier's own weights, the
pooler) trains at the full rate.
"""
import re
from typing import Optional, Tuple

from spacy.util import registry
from thinc.api import Optimizer
from thinc.types import FloatsXd

from .errors import Errors

# "encoder.layer.7." (BERT, XLM-R, e5), "layers.7." or "layer.7." (others)
_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings?\.")


class LayerDecayOptimizer(Optimizer):
    """thinc's Optimizer, scaling each encoder weight's learning rate by its layer."""

    __slots__ = ["layer_decay", "layers"]

    def __call__(self, key: Tuple[int, str], weights: FloatsXd, gradient: FloatsXd, *, lr_scale: float = 1.0):
        scale = layer_rate_scale(key[1], self.layer_decay, self.layers)
        return super().__call__(key, weights, gradient, lr_scale=lr_scale * scale)


def layer_rate_scale(name: str, layer_decay: float, layers: int) -> float:
    """The factor on the learning rate of the weight called ``name``: 1 at the
    top encoder layer (index layers - 1), layer_decay one below, and the
    embeddings one step below layer 0."""
    if layer_decay == 1.0 or not isinstance(name, str):
        return 1.0
    match = _LAYER.search(name)
    if match:
        depth = layers - 1 - min(int(match.group(1)), layers - 1)
        return layer_decay**depth
    if _EMBEDDINGS.search(name):
        return layer_decay**layers
    return 1.0


@registry.optimizers("spacy-mlbert.AdamLayerDecay.v1")
def adam_layer_decay_v1(
    learn_rate=0.001,
    *,
    layer_decay: float = 0.9,
    layers: int = 12,
    L2=1e-6,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    grad_clip=1.0,
    L2_is_weight_decay: bool = True,
    use_averages: bool = False,
) -> Optimizer:
    """thinc's Adam.v1 with layer-wise learning-rate decay.

    layer_decay (float): Factor between one encoder layer's rate and the
        next one up's, in (0, 1]; 1 is plain Adam.
    layers (int): Encoder layers (12 for multilingual-e5-small, XLM-R base, mBERT).
    Other arguments: as thinc's Adam.v1.
    RETURNS (Optimizer): The optimizer.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(Errors.E154.format(value=layer_decay))
    if not (isinstance(layers, int) and layers > 0):
        raise ValueError(Errors.E155.format(value=layers))
    optimizer = LayerDecayOptimizer(
        learn_rate,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
        use_radam=False,
    )
    optimizer.layer_decay = layer_decay
    optimizer.layers = layers
    return optimizer
