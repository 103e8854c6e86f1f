"""PyTorch's int8 modules as plain tensors, and back.

A dynamically quantized ``nn.Linear`` keeps its weights packed for its
kernels and a quantized ``nn.Embedding`` keeps them in a quantized tensor:
neither is a tensor that the safetensors layout (lean_weights.py) can hold.
Each is taken apart into the integers, their per-row scales and zero points,
and the fp32 bias, which can; rebuilt from them it computes exactly what it
did, so an int8 pipeline is saved in int8 and loads without ever holding its
fp32 weights.
"""
from typing import Dict, Optional

import torch
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

# The kinds of module this file takes apart, as the saved layout names them.
LINEAR = "dynamic_linear_qint8"
EMBEDDING = "embedding_quint8"
# The saved tensors of one module, after its name and a dot.
INTEGERS, SCALES, ZERO_POINTS, BIAS = "int8_weight", "weight_scales", "weight_zero_points", "bias"


def int8_kind(module: torch.nn.Module) -> Optional[str]:
    """LINEAR or EMBEDDING for the int8 modules this file can take apart
    (per-row quantized, as quantization.py makes them), else None."""
    if isinstance(module, DynamicQuantizedLinear) and module.weight().qscheme() == torch.per_channel_affine:
        return LINEAR
    if isinstance(module, QuantizedEmbedding) and module.weight().qscheme() == torch.per_channel_affine_float_qparams:
        return EMBEDDING
    return None


def int8_tensors(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The plain tensors of an int8 module (int8_kind not None), keyed as
    INTEGERS, SCALES, ZERO_POINTS and BIAS (LINEAR with a bias only)."""
    weight = module.weight()
    tensors = {
        INTEGERS: weight.int_repr().contiguous(),
        SCALES: weight.q_per_channel_scales().contiguous(),
        ZERO_POINTS: weight.q_per_channel_zero_points().contiguous(),
    }
    if isinstance(module, DynamicQuantizedLinear):
        bias = module.bias()
        if bias is not None:
            tensors[BIAS] = bias.detach().contiguous()
    return tensors


def int8_module(kind: str, tensors: Dict[str, torch.Tensor], like: torch.nn.Module) -> torch.nn.Module:
    """Rebuild an int8 module of ``kind`` from int8_tensors' output, in place
    of the fp32 module ``like`` (an nn.Linear or nn.Embedding of the same
    shape, e.g. one built without initialising its weights). The integers
    are copied into the module's own packed form; nothing keeps ``tensors``.
    """
    weight = torch._make_per_channel_quantized_tensor(tensors[INTEGERS], tensors[SCALES], tensors[ZERO_POINTS], 0)
    if kind == LINEAR:
        module = DynamicQuantizedLinear(like.in_features, like.out_features, bias_=BIAS in tensors, dtype=torch.qint8)
        bias = tensors.get(BIAS)
        # the packed layer keeps the bias it is given: its own copy, not a view
        module.set_weight_bias(weight, None if bias is None else bias.clone())
        return module
    if kind == EMBEDDING:
        # built with one row, then given its weight: built whole, it would
        # first pack a placeholder as large as the weight
        module = QuantizedEmbedding(1, like.embedding_dim, dtype=torch.quint8)
        module.num_embeddings, module.padding_idx = like.num_embeddings, like.padding_idx
        module.set_weight(weight)
        return module
    raise ValueError(f"unknown int8 module kind: {kind}")
