"""The encoder's int8 modules as plain tensors, and back.

A dynamically quantized ``nn.Linear`` keeps its weights packed for its
kernels: not a tensor that the safetensors layout (lean_weights.py) can
hold. It is taken apart into the integers, their per-row scales and zero
points, and the fp32 bias, which can; rebuilt from them it computes exactly
what it did, so an int8 pipeline is saved in int8 and loads without ever
holding its fp32 weights.

The 8-bit word embeddings are a RowwiseUint8Embedding: plain tensors
already, which a loaded pipeline keeps as views of the file's bytes, with no
copy (torch's quantized Embedding would pack a copy of them).
"""
from typing import Dict, Optional, Tuple

import torch
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

# The kinds of module this file takes apart, as the saved layout names them.
LINEAR = "dynamic_linear_qint8"
EMBEDDING = "embedding_quint8"
# The saved tensors of one module, after its name and a dot.
INTEGERS, SCALES, ZERO_POINTS, BIAS = "int8_weight", "weight_scales", "weight_zero_points", "bias"


class RowwiseUint8Embedding(torch.nn.Module):
    """Word embeddings in 8 bits, one scale and zero point per row (torch's
    ``per_channel_affine_float_qparams``): a looked-up row is
    ``(q - zero_point) * scale``, computed as torch's quantized Embedding
    computes it. Inference only (no padding_idx: it only matters to
    gradients)."""

    def __init__(self, integers: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor):
        super().__init__()
        self.num_embeddings, self.embedding_dim = integers.shape
        self.register_buffer(INTEGERS, integers)
        self.register_buffer(SCALES, scales)
        self.register_buffer(ZERO_POINTS, zero_points)

    @classmethod
    def from_quantized(cls, module: QuantizedEmbedding) -> "RowwiseUint8Embedding":
        """The same embeddings as torch's quantized Embedding (its
        float-qparams weight), in plain tensors."""
        return cls(*_rowwise(module.weight(), torch.float32))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scales = getattr(self, SCALES)[ids].unsqueeze(-1)
        offsets = -(getattr(self, ZERO_POINTS)[ids].unsqueeze(-1) * scales)
        return torch.addcmul(offsets, getattr(self, INTEGERS)[ids].float(), scales)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a state dict of torch's quantized Embedding (what a quantized
        # WordpieceTransformer saved before this module): its weight in plain tensors
        packed = state_dict.pop(prefix + "_packed_params._packed_weight", None)
        if packed is not None:
            state_dict.pop(prefix + "_packed_params.dtype", None)
            state_dict[prefix + INTEGERS] = packed.int_repr()
            state_dict[prefix + SCALES] = packed.q_per_channel_scales().float()
            state_dict[prefix + ZERO_POINTS] = packed.q_per_channel_zero_points().float()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, uint8 rows with a scale and zero point each"


def _rowwise(weight: torch.Tensor, dtype: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The integers, scales and zero points of a per-row quantized tensor,
    each a copy: what ``q_per_channel_scales()`` returns can point into
    memory that is freed with the quantized tensor."""
    scales, zero_points = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
    if dtype is not None:
        scales, zero_points = scales.to(dtype), zero_points.to(dtype)
    return weight.int_repr().clone(), scales.clone(), zero_points.clone()


def int8_kind(module: torch.nn.Module) -> Optional[str]:
    """LINEAR or EMBEDDING for the int8 modules this file can take apart
    (per-row quantized, as quantization.py makes them), else None."""
    if isinstance(module, DynamicQuantizedLinear) and module.weight().qscheme() == torch.per_channel_affine:
        return LINEAR
    if isinstance(module, RowwiseUint8Embedding):
        return EMBEDDING
    return None


def int8_tensors(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The plain tensors of an int8 module (int8_kind not None), keyed as
    INTEGERS, SCALES, ZERO_POINTS and BIAS (LINEAR with a bias only)."""
    if isinstance(module, RowwiseUint8Embedding):
        return dict(module.named_buffers())
    tensors = dict(zip((INTEGERS, SCALES, ZERO_POINTS), _rowwise(module.weight())))
    bias = module.bias()
    if bias is not None:
        tensors[BIAS] = bias.detach().contiguous()
    return tensors


def int8_module(kind: str, tensors: Dict[str, torch.Tensor], like: torch.nn.Module) -> torch.nn.Module:
    """Rebuild an int8 module of ``kind`` from int8_tensors' output, in place
    of the fp32 module ``like`` (an nn.Linear or nn.Embedding of the same
    shape, e.g. one built without initialising its weights). A LINEAR copies
    the integers into its own packed form; an EMBEDDING keeps the tensors it
    is given (views of a loaded file's bytes stay views)."""
    if kind == LINEAR:
        weight = torch._make_per_channel_quantized_tensor(tensors[INTEGERS], tensors[SCALES], tensors[ZERO_POINTS], 0)
        module = DynamicQuantizedLinear(like.in_features, like.out_features, bias_=BIAS in tensors, dtype=torch.qint8)
        bias = tensors.get(BIAS)
        # the packed layer keeps the bias it is given: its own copy, not a view
        module.set_weight_bias(weight, None if bias is None else bias.clone())
        return module
    if kind == EMBEDDING:
        return RowwiseUint8Embedding(tensors[INTEGERS], tensors[SCALES], tensors[ZERO_POINTS])
    raise ValueError(f"unknown int8 module kind: {kind}")
