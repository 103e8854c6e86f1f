"""Save and load the encoder's weights without extra copies.

spacy-transformers saves the encoder as ``torch.save`` bytes inside thinc's
msgpack, and loading holds five copies of the weights at once: the file's
bytes, thinc's unpacked copy of them, the shim's, a freshly initialised model
and the state dict that ``torch.load`` makes. For e5-small that is a load
peak of 3.2 GB for a pipeline that then holds 1.4 GB.

Here the transformer component's model is saved as a short header, thinc's
msgpack without the encoder's weights, and the weights in the safetensors
layout. Loading builds the encoder without initialising it (its tensors are
allocated, never written, so they take no memory) and assigns tensors that
are views of the bytes read from disk: the file's bytes become the weights,
and nothing else is copied. An int8 encoder (quantization.py) is saved in
int8: its int8 modules taken apart into plain tensors (int8_modules.py) and
rebuilt from them, so loading never holds its fp32 weights.

Views of a ``bytes`` object must not be written to. Inference never writes;
the first training step gives the encoder its own copy first
(``own_borrowed_weights``). Files in spacy-transformers' format (pipelines
saved before) load as they always did.
"""
import json
import struct
import sys
import tempfile
import warnings
from functools import partial
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import srsly
import torch
from spacy.util import SimpleFrozenDict
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model, get_torch_default_device

from .int8_modules import int8_kind, int8_module, int8_tensors

MAGIC = b"MLBERTW1"
_LENGTH = struct.Struct("<Q")  # also the safetensors header's length field
# safetensors metadata key: the int8 modules of the weights, name -> kind
_INT8_MODULES = "mlbert_int8_modules"
# safetensors' dtype names
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def install_lean_weights(model: Model) -> None:
    """Give a TransformerModel the lean ``to_bytes``/``from_bytes`` (and so
    ``to_disk``/``from_disk``, which thinc routes through them). They apply
    where the TransformerModel is what gets serialised, i.e. the model of a
    ``transformer`` component; nested inside another model (a
    WordpieceTransformer) it is saved by thinc as before."""
    shim = model.layers[0].shims[0]
    # partials, not lambdas: copy.deepcopy rebinds a partial's arguments
    model.to_bytes = partial(_model_to_bytes, model)
    model.from_bytes = partial(_model_from_bytes, model)
    shim.from_bytes = partial(_shim_from_bytes, shim)


def _model_to_bytes(model: Model) -> bytes:
    shim = model.layers[0].shims[0]
    encoder = shim._model
    saved = _weights_to_save(encoder)
    if saved is None:
        return Model.to_bytes(model)
    from safetensors.torch import save

    tensors, int8 = saved
    weights = save(tensors, metadata={_INT8_MODULES: json.dumps(int8)} if int8 else None)
    del tensors, saved
    # thinc's part without the weights: the shim's torch.save of an empty module
    shim._model = torch.nn.Module()
    try:
        rest = Model.to_bytes(model)
    finally:
        shim._model = encoder
    return b"".join((MAGIC, _LENGTH.pack(len(rest)), rest, weights))


def _weights_to_save(encoder: Optional[torch.nn.Module]) -> Optional[Tuple[Dict[str, torch.Tensor], Dict[str, str]]]:
    """The encoder's tensors on the CPU, int8 modules taken apart into plain
    tensors (int8_modules.py), and the kind of each int8 module by name; or
    None where the layout cannot hold them and spacy-transformers' format is
    used instead: no encoder yet, tensors that share memory (tied weights),
    quantized modules of another kind, or a big-endian machine."""
    if encoder is None or sys.byteorder != "little":
        return None
    int8 = {name: kind for name, module in encoder.named_modules() if (kind := int8_kind(module))}
    state = {
        name: tensor
        for name, tensor in encoder.state_dict().items()
        if _owner(name, int8) is None
    }
    for name in int8:
        for part, tensor in int8_tensors(encoder.get_submodule(name)).items():
            state[f"{name}.{part}"] = tensor
    if not state or not all(isinstance(t, torch.Tensor) and t.dtype in _DTYPES.values() for t in state.values()):
        return None
    pointers = [t.data_ptr() for t in state.values() if t.numel()]
    if len(set(pointers)) != len(pointers):
        return None
    return {name: t.detach().to("cpu").contiguous() for name, t in state.items()}, int8


def _owner(key: str, modules: Dict[str, str]) -> Optional[str]:
    """The module of ``modules`` that a state-dict key belongs to, if any."""
    prefix = key.rpartition(".")[0]
    while prefix:
        if prefix in modules:
            return prefix
        prefix = prefix.rpartition(".")[0]
    return None


def _model_from_bytes(model: Model, data: bytes) -> Model:
    if data[: len(MAGIC)] != MAGIC:
        return Model.from_bytes(model, data)
    start = len(MAGIC) + _LENGTH.size
    (n_rest,) = _LENGTH.unpack_from(data, len(MAGIC))
    shim = model.layers[0].shims[0]
    shim._lean_pending = memoryview(data)[start + n_rest :]
    try:
        return Model.from_bytes(model, data[start : start + n_rest])
    finally:
        shim._lean_pending = None


def _shim_from_bytes(shim: HFShim, data: bytes) -> HFShim:
    weights = getattr(shim, "_lean_pending", None)
    msg = srsly.msgpack_loads(data)
    if weights is None or not msg["config"]:
        return HFShim.from_bytes(shim, data)
    config, tokenizer, vocab_file_contents = _config_and_tokenizer(shim, msg)
    from transformers import AutoModel
    from transformers.modeling_utils import no_init_weights

    tensors, metadata = tensor_views(weights)
    int8 = json.loads(metadata.get(_INT8_MODULES, "{}"))
    # an fp32 skeleton: the int8 modules are rebuilt from their saved integers,
    # not quantized again (the shim's model class would quantize by the config)
    model_cls = AutoModel if int8 else shim.model_cls
    with no_init_weights():
        encoder = model_cls.from_config(config)
    _assign_weights(encoder, tensors, int8)
    del tensors
    device = get_torch_default_device()
    encoder.to(device)
    if int8:
        encoder.eval()
    shim._hfmodel = HFObjects(tokenizer, encoder, vocab_file_contents, SimpleFrozenDict(), SimpleFrozenDict())
    shim._model = encoder
    # on the CPU the weights are views of read-only bytes (see the module's docstring)
    shim._lean_borrowed = device.type == "cpu"
    return shim


def _assign_weights(encoder: torch.nn.Module, tensors: Dict[str, torch.Tensor], int8: Dict[str, str]) -> None:
    """Put the saved tensors into an encoder built without initialising its
    weights: int8 modules rebuilt in place of their fp32 ones, every other
    tensor assigned as it is (a view, no copy). Every tensor of the encoder
    must be given, and nothing else (as load_state_dict's ``strict``)."""
    parts: Dict[str, Dict[str, torch.Tensor]] = {name: {} for name in int8}
    plain = {}
    for key, tensor in tensors.items():
        owner = _owner(key, int8)
        if owner is None:
            plain[key] = tensor
        else:
            parts[owner][key[len(owner) + 1 :]] = tensor
    # the fp32 tensors first: torch's int8 modules require their own keys
    # in any state dict they are given
    missing, unexpected = encoder.load_state_dict(plain, strict=False, assign=True)
    missing = [key for key in missing if _owner(key, int8) is None]
    if missing or unexpected:
        raise RuntimeError(f"saved encoder weights do not match the encoder: missing {missing}, unexpected {unexpected}")
    for name, kind in int8.items():
        parent, _, child = name.rpartition(".")
        holder = encoder.get_submodule(parent) if parent else encoder
        setattr(holder, child, int8_module(kind, parts.pop(name), like=getattr(holder, child)))


def _config_and_tokenizer(shim: HFShim, msg: dict):
    """The encoder's config and tokenizer from the files the shim saved."""
    files = dict(msg["tokenizer"])
    tokenizer_kwargs = files.pop("kwargs", {})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        srsly.write_json(folder / "config.json", msg["config"])
        config = shim.config_cls.from_pretrained(folder / "config.json")
        for name, content in files.items():
            (folder / name).write_bytes(content)
        tokenizer = shim.tokenizer_cls.from_pretrained(str(folder), **tokenizer_kwargs)
        vocab_file_contents = None
        if hasattr(tokenizer, "vocab_file"):
            vocab_file = folder / tokenizer.vocab_files_names["vocab_file"]
            vocab_file_contents = vocab_file.read_bytes()
    return config, tokenizer, vocab_file_contents


def tensor_views(weights: memoryview) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The tensors of safetensors bytes as views of them (no copy), and the
    header's metadata."""
    (n_header,) = _LENGTH.unpack_from(weights, 0)
    header = json.loads(bytes(weights[_LENGTH.size : _LENGTH.size + n_header]))
    body = weights[_LENGTH.size + n_header :]
    tensors = {}
    with warnings.catch_warnings():
        # "The given buffer is not writable": nothing writes to these views
        warnings.simplefilter("ignore", UserWarning)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            flat = torch.frombuffer(body[begin:end], dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
            tensors[name] = flat.reshape(info["shape"])
    return tensors, header.get("__metadata__") or {}


def own_borrowed_weights(shim: HFShim) -> None:
    """Copy weights that are views of loaded bytes into the encoder's own
    memory, once, before anything writes to them (a training step)."""
    if not getattr(shim, "_lean_borrowed", False):
        return
    with torch.no_grad():
        for tensor in _tensors(shim._model):
            tensor.data = tensor.data.clone()
    shim._lean_borrowed = False


def _tensors(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()
