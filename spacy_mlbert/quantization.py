"""Dynamic int8 quantization of the encoder, for CPU inference.

``quantize = "int8"`` of ``spacy-mlbert.TransformerModel.v1`` (and of
``WordpieceTransformer.v1``) replaces the encoder's ``nn.Linear`` layers by
PyTorch's dynamically quantized ones: int8 weights, activations quantized on
the fly, about twice as fast on CPU. ``"int8-embeddings"`` also stores the
word-embedding matrix in 8 bits (weight-only; for e5-small it is 250k x 384,
most of the model's memory). ``"none"`` (the default) keeps fp32, and only
fp32 trains: a quantized encoder has no gradients.

A quantized pipeline is saved with its int8 weights (half to a quarter of
the fp32 size on disk, and no fp32 state dict to read at load) and the kind
of quantization in the encoder's own Hugging Face config (CONFIG_KEY), so
that loading builds the same quantized modules before it reads the weights.
An fp32 pipeline loaded with ``quantize = "int8"`` is quantized once its
fp32 weights are in.
"""
import contextlib
import warnings
from typing import Any, Iterator, List

from thinc.api import CupyOps, deserialize_attr, get_current_ops, get_torch_default_device

from .errors import Errors

NONE = "none"
INT8 = "int8"
INT8_EMBEDDINGS = "int8-embeddings"
QUANTIZE_OPTIONS = (NONE, INT8, INT8_EMBEDDINGS)
# Key in the encoder's Hugging Face config that says how its saved weights
# are quantized (absent: fp32).
CONFIG_KEY = "mlbert_quantized"
# The registered architectures that take a ``quantize`` setting.
QUANTIZABLE = ("spacy-mlbert.TransformerModel.v1", "spacy-mlbert.WordpieceTransformer.v1")


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
    # is what this module needs and still works. Only that warning is muted.
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
    from torch.ao.quantization import default_dynamic_qconfig, float_qparams_weight_only_qconfig, quantize_dynamic

    spec: dict = {torch.nn.Linear: default_dynamic_qconfig}
    if how == INT8_EMBEDDINGS:
        embeddings = transformer.get_input_embeddings()
        name = next(name for name, module in transformer.named_modules() if module is embeddings)
        spec[name] = float_qparams_weight_only_qconfig
    transformer.eval()
    with _quiet_torch_quantization():
        quantize_dynamic(transformer, spec, dtype=torch.qint8, inplace=True)
    setattr(transformer.config, CONFIG_KEY, how)
    return transformer


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


def from_bytes_quiet(shim: Any, bytes_data: bytes) -> Any:
    """HFShim.from_bytes without torch's warnings about quantized weights."""
    with _quiet_torch_quantization():
        return type(shim).from_bytes(shim, bytes_data)


def sync_quantization(model: Any) -> None:
    """Make the encoder of a spacy-mlbert transformer layer as quantized as
    its ``quantize`` setting says: an fp32 encoder (trained, or saved fp32)
    is quantized now; one saved quantized otherwise cannot go back (E205).

    model (TransformerModel): The layer, with its encoder loaded.
    """
    wanted = model.attrs.get("quantize", NONE)
    transformer = model.transformer
    if transformer is None:
        return
    saved = saved_quantization(transformer.config)
    if saved == wanted:
        return
    if saved != NONE:
        raise ValueError(Errors.E205.format(saved=saved, quantize=wanted))
    quantize_encoder(transformer, wanted)


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
    place, and set ``quantize`` in its config, so that it saves (and
    ``spacy.load`` loads it) quantized.

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
        node.attrs["quantize"] = check_quantize(how)
        sync_quantization(node)
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
