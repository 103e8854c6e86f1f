"""Dynamic int8 quantization of the encoder, for CPU inference.

``quantize = "int8"`` of ``spacy-mlbert.TransformerModel.v1`` (and of
``WordpieceTransformer.v1``) replaces the encoder's ``nn.Linear`` layers by
PyTorch's dynamically quantized ones: int8 weights (one scale per output
channel), activations quantized on the fly with one scale per batch. The
feed-forward output projections stay fp32: their inputs (after the GELU)
have a few very large dimensions, and one scale for all of them leaves the
rest with a handful of levels. On the trained e5-small model (16 English
BRIGHTER dev texts) quantizing them too moved doc.cats by 0.054 on average
(max 0.29); without them 0.019 (max 0.08). ``"int8-embeddings"`` also stores the
word-embedding matrix in 8 bits, one scale and zero point per row
(weight-only; for e5-small it is 250k x 384, most of the model's memory). ``"none"`` (the default) keeps fp32, and only
fp32 trains: a quantized encoder has no gradients.

``spacy-mlbert quantize`` quantizes a trained pipeline and saves it in int8
(layers/lean_weights.py with layers/int8_modules.py): loading rebuilds the
int8 modules from their saved integers and never holds the fp32 weights.
The weights that stay unpacked (the fp32 ones; with "int8-embeddings" the
8-bit word embeddings too) are views of the file's bytes.
An fp32 pipeline loaded with ``quantize = "int8"`` in its config (or saved
by an earlier ``quantize``: fp32 weights under that config) is quantized as
it loads, before ``spacy.load`` returns. The kind of quantization is kept in
the encoder's Hugging Face config, CONFIG_KEY, so that quantized weights in
spacy-transformers' layout (a WordpieceTransformer's) load into the same
modules.
"""
import contextlib
import warnings
from typing import Any, Iterator, List

from thinc.api import CupyOps, deserialize_attr, get_current_ops, get_torch_default_device

from .errors import Errors
from .layers.int8_modules import RowwiseUint8Embedding
from .layers.lean_weights import own_borrowed_weights

NONE = "none"
INT8 = "int8"
INT8_EMBEDDINGS = "int8-embeddings"
QUANTIZE_OPTIONS = (NONE, INT8, INT8_EMBEDDINGS)
# Key in the encoder's Hugging Face config that says how its saved weights
# are quantized (absent: fp32).
CONFIG_KEY = "mlbert_quantized"
# The registered architectures that take a ``quantize`` setting.
QUANTIZABLE = (
    "spacy-mlbert.TransformerModel.v1",
    "spacy-mlbert.WordpieceTransformer.v1",
    "spacy-mlbert.WordpieceTransformer.v2",
)


class QuantizeSetting(str):
    """The ``quantize`` setting as a model attr (``attrs["quantize"]``).

    thinc saves a model's attrs with its weights and puts the saved values
    back over the config's at load; this one keeps the config's, so that
    ``spacy.load(path, config={...: {"quantize": "int8"}})`` quantizes an
    fp32 pipeline, and a config that contradicts quantized weights is
    caught (E205) instead of being overruled.
    """


@deserialize_attr.register(QuantizeSetting)
def _keep_config_setting(default: QuantizeSetting, value: bytes, name: str, model: Any) -> QuantizeSetting:
    return default


def check_quantize(value: Any) -> QuantizeSetting:
    """Raise E200 unless ``value`` is one of QUANTIZE_OPTIONS.

    value (Any): The ``quantize`` setting.
    RETURNS (QuantizeSetting): The value, as a model attr.
    """
    if value not in QUANTIZE_OPTIONS:
        raise ValueError(Errors.E200.format(value=value, options=", ".join(QUANTIZE_OPTIONS)))
    return QuantizeSetting(value)


def check_cpu(how: str) -> None:
    """Raise E203 when a quantized encoder would run on a GPU (spaCy's
    ``--gpu-id``, ``spacy.require_gpu()``): PyTorch's dynamic int8 kernels are
    CPU only."""
    if how == NONE:
        return
    if isinstance(get_current_ops(), CupyOps) or get_torch_default_device().type != "cpu":
        raise ValueError(Errors.E203.format(quantize=how))


def saved_quantization(hf_config: Any) -> str:
    """How the weights of an encoder with this Hugging Face config are
    quantized ("none" for fp32)."""
    return getattr(hf_config, CONFIG_KEY, NONE) or NONE


@contextlib.contextmanager
def _quiet_torch_quantization() -> Iterator[None]:
    # torch.ao.quantization warns on every call that it moves to torchao (not
    # installed here, and a heavy dependency); its eager dynamic quantization
    # is what this module needs and still works. Only these warnings are muted.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel", category=UserWarning)
        # torch.load of quantized weights goes through TypedStorage
        warnings.filterwarnings("ignore", message=r"TypedStorage is deprecated", category=UserWarning)
        yield


def quantize_encoder(transformer: Any, how: str) -> Any:
    """Quantize a Hugging Face encoder in place (CPU only) and mark its config.

    transformer (PreTrainedModel): An fp32 encoder.
    how (str): "int8" (nn.Linear layers) or "int8-embeddings" (also the word
        embeddings, weight-only); "none" returns it unchanged.
    RETURNS (PreTrainedModel): The same model, quantized.
    """
    check_quantize(how)
    if how == NONE:
        return transformer
    check_cpu(how)
    import torch
    from torch.ao.quantization import float_qparams_weight_only_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    linear = _linear_layers_to_quantize(transformer)
    modules = dict(transformer.named_modules())
    with torch.no_grad():
        for name in linear:
            # the packed int8 layer keeps the fp32 bias it is given; one that
            # is a view of a loaded file's bytes (lean_weights.py) would keep
            # all of the bytes alive
            if modules[name].bias is not None:
                modules[name].bias.data = modules[name].bias.data.clone()
    spec = {name: per_channel_dynamic_qconfig for name in linear}
    if how == INT8_EMBEDDINGS:
        embeddings = transformer.get_input_embeddings()
        name = next(name for name, module in transformer.named_modules() if module is embeddings)
        spec[name] = float_qparams_weight_only_qconfig
    transformer.eval()
    with _quiet_torch_quantization():
        quantize_dynamic(transformer, spec, dtype=torch.qint8, inplace=True)
    if how == INT8_EMBEDDINGS:
        # torch's 8-bit rows, as plain tensors that a saved pipeline loads as
        # views of its file (layers/int8_modules.py)
        transformer.set_input_embeddings(RowwiseUint8Embedding.from_quantized(transformer.get_input_embeddings()))
    setattr(transformer.config, CONFIG_KEY, how)
    return transformer


def _linear_layers_to_quantize(transformer: Any) -> List[str]:
    """Names of the encoder's linear layers, without the feed-forward output
    projections (intermediate_size -> hidden_size; see the module's docstring)."""
    import torch

    ffn_width = getattr(transformer.config, "intermediate_size", None)
    return [
        name
        for name, module in transformer.named_modules()
        if isinstance(module, torch.nn.Linear) and not (ffn_width and module.in_features == ffn_width)
    ]


class QuantizedAutoModel:
    """Stands in for ``AutoModel`` in spacy-transformers' HFShim.from_bytes:
    builds the encoder from its saved config and quantizes it as its saved
    weights were, so that they load into the same modules (strictly)."""

    @staticmethod
    def from_config(config: Any) -> Any:
        from transformers import AutoModel

        model = AutoModel.from_config(config)
        how = saved_quantization(config)
        if how != NONE:
            quantize_encoder(model, how)
        return model


def set_quantize(model: Any, how: str) -> None:
    """Set the ``quantize`` of a spacy-mlbert transformer layer: its attr,
    and the copy its shim reads when it loads weights (the shim cannot hold
    the layer: a deep copy of the shim would copy the whole layer)."""
    model.attrs["quantize"] = check_quantize(how)
    model.layers[0].shims[0].mlbert_quantize = model.attrs["quantize"]


def from_bytes_quantizing(load: Any, shim: Any, bytes_data: bytes) -> Any:
    """A shim's ``from_bytes`` (``load``), then the encoder quantized as the
    layer's setting says (see _sync_encoder); torch's warnings about
    quantized weights muted."""
    wanted = getattr(shim, "mlbert_quantize", NONE)
    check_cpu(wanted)  # before int8 weights would be moved to a GPU
    with _quiet_torch_quantization():
        load(bytes_data)
        _sync_encoder(shim, wanted)
    return shim


def sync_quantization(model: Any) -> None:
    """Make the encoder of a spacy-mlbert transformer layer as quantized as
    its ``quantize`` setting says (see _sync_encoder).

    model (TransformerModel): The layer.
    """
    _sync_encoder(model.layers[0].shims[0], model.attrs.get("quantize", NONE))


def _sync_encoder(shim: Any, wanted: str) -> None:
    """An fp32 encoder (trained, or saved fp32) is quantized now; one whose
    weights are quantized otherwise cannot go back (E205)."""
    transformer = shim._model
    if transformer is None or not hasattr(transformer, "config"):
        return
    saved = saved_quantization(transformer.config)
    if saved == wanted:
        return
    if saved != NONE:
        raise ValueError(Errors.E205.format(saved=saved, quantize=wanted))
    quantize_encoder(transformer, wanted)
    if wanted == INT8_EMBEDDINGS:
        # what is left in fp32 is small (norms, position embeddings): copied,
        # the loaded file's bytes are freed. With "int8" the word embeddings
        # stay views of them, and copying would double them for a moment.
        own_borrowed_weights(shim)


def transformer_layers(nlp: Any) -> List[Any]:
    """The spacy-mlbert transformer layers (they have a ``quantize`` attr) of
    every component of ``nlp``, each once."""
    found: List[Any] = []
    for _, proc in nlp.components:
        model = getattr(proc, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            if "quantize" in node.attrs and all(node is not seen for seen in found):
                found.append(node)
    return found


def check_trainable(nlp: Any, what: str) -> None:
    """Raise E201 if a transformer of ``nlp`` is quantized.

    nlp (Language): A loaded pipeline.
    what (str): What was asked, for the message (e.g. "train-staged").
    """
    for node in transformer_layers(nlp):
        if node.attrs["quantize"] != NONE:
            raise ValueError(Errors.E201.format(what=what, quantize=node.attrs["quantize"]))


def quantize_pipeline(nlp: Any, how: str, path: Any = "the pipeline") -> List[str]:
    """Quantize every spacy-mlbert transformer of a loaded fp32 pipeline, in
    place, and set ``quantize`` in its config (see mark_quantized).

    nlp (Language): The fp32 pipeline.
    how (str): "int8" or "int8-embeddings".
    path (Any): Where it was loaded from, for the messages.
    RETURNS (List[str]): The components whose config was changed.
    """
    changed = mark_quantized(nlp, how, path)
    for node in transformer_layers(nlp):
        sync_quantization(node)
    return changed


def mark_quantized(nlp: Any, how: str, path: Any = "the pipeline") -> List[str]:
    """Set ``quantize`` in every spacy-mlbert transformer of a loaded fp32
    pipeline and in its config, leaving the weights in fp32 until the next
    forward pass: saved now, the pipeline keeps its fp32 weights and is
    quantized as ``spacy.load`` loads it.

    nlp (Language): The fp32 pipeline.
    how (str): "int8" or "int8-embeddings".
    path (Any): Where it was loaded from, for the messages.
    RETURNS (List[str]): The components whose config was changed.
    """
    check_quantize(how)
    layers = transformer_layers(nlp)
    if not layers:
        raise ValueError(Errors.E204.format(path=path, components=", ".join(nlp.component_names)))
    for node in layers:
        if node.attrs["quantize"] != NONE or saved_quantization(node.transformer.config) != NONE:
            raise ValueError(Errors.E206.format(path=path, quantize=node.attrs["quantize"]))
    for node in layers:
        set_quantize(node, how)
    changed = []
    for name in nlp.component_names:
        if _set_quantize(nlp.get_pipe_config(name), how):
            changed.append(name)
    return changed


def _set_quantize(config: Any, how: str) -> bool:
    """Set ``quantize`` in every QUANTIZABLE block of a component's config."""
    found = False
    if isinstance(config, dict):
        if config.get("@architectures") in QUANTIZABLE:
            config["quantize"] = how
            found = True
        for value in config.values():
            found = _set_quantize(value, how) or found
    return found
