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
and nothing else is copied.

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
from typing import Dict, Iterator, Optional

import srsly
import torch
from spacy.util import SimpleFrozenDict
from spacy_transformers.data_classes import HFObjects
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model, get_torch_default_device

MAGIC = b"MLBERTW1"
_LENGTH = struct.Struct("<Q")  # also the safetensors header's length field
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
    tensors = _weights_to_save(encoder)
    if tensors is None:
        return Model.to_bytes(model)
    from safetensors.torch import save

    weights = save(tensors)
    del tensors
    # thinc's part without the weights: the shim's torch.save of an empty module
    shim._model = torch.nn.Module()
    try:
        rest = Model.to_bytes(model)
    finally:
        shim._model = encoder
    return b"".join((MAGIC, _LENGTH.pack(len(rest)), rest, weights))


def _weights_to_save(encoder: Optional[torch.nn.Module]) -> Optional[Dict[str, torch.Tensor]]:
    """The encoder's state dict on the CPU, or None where the layout cannot
    hold it and spacy-transformers' format is used instead: no encoder yet,
    tensors that share memory (tied weights), quantized modules, or a
    big-endian machine."""
    if encoder is None or sys.byteorder != "little":
        return None
    state = encoder.state_dict()
    if not state or not all(isinstance(t, torch.Tensor) and t.dtype in _DTYPES.values() for t in state.values()):
        return None
    pointers = [t.data_ptr() for t in state.values() if t.numel()]
    if len(set(pointers)) != len(pointers):
        return None
    return {name: t.detach().to("cpu").contiguous() for name, t in state.items()}


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
    from transformers.modeling_utils import no_init_weights

    with no_init_weights():
        encoder = shim.model_cls.from_config(config)
    encoder.load_state_dict(tensor_views(weights), strict=True, assign=True)
    device = get_torch_default_device()
    encoder.to(device)
    shim._hfmodel = HFObjects(tokenizer, encoder, vocab_file_contents, SimpleFrozenDict(), SimpleFrozenDict())
    shim._model = encoder
    # on the CPU the weights are views of read-only bytes (see the module's docstring)
    shim._lean_borrowed = device.type == "cpu"
    return shim


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


def tensor_views(weights: memoryview) -> Dict[str, torch.Tensor]:
    """The tensors of safetensors bytes as views of them (no copy)."""
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
    return tensors


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
