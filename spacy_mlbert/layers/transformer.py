"""spacy-transformers' TransformerModel, with a clear error for a bad encoder
name and a warning when wordpieces are cut.

The encoder is only loaded at ``initialize`` (a saved pipeline carries its own
weights), so the check runs there, not when the config is built: loading a
trained pipeline must keep working after the source folder is gone.

spacy-transformers drops the wordpieces of a window past the encoder's limit
without a word. The forward pass here counts them (docs, windows, wordpieces)
and warns once per batch (W010).

thinc's optimizer keeps the averages of ``use_averages`` keyed ``(shim id,
parameter name)``, but PyTorchShim.use_params looks for string keys and
loads a full state dict: averaged weights never reached the encoder, only
the classifier's own. The shim here reads the optimizer's keys, so that
``spacy train`` scores and saves the averaged encoder too.

``quantize = "int8"`` runs the encoder with int8 weights on CPU
(quantization.py): it is applied once the weights are in, it never trains
(E201 at initialize, E202 at an update) and never runs on a GPU (E203).
"""
import contextlib
import copy
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.layers import TransformerModel
from spacy_transformers.layers._util import replace_listener_cfg
from thinc.api import xp2torch

from ..errors import Errors, Warnings
from ..quantization import NONE, QuantizedAutoModel, check_quantize, from_bytes_quantizing, set_quantize, sync_quantization
from ..span_getters import NO_MAX_LENGTH
from .input_prefix import add_input_prefix
from .lean_weights import install_lean_weights, own_borrowed_weights
from .length_groups import group_by_length

# Wordpieces (rows x padded length) the encoder runs at once. On CPU smaller
# groups pad less and run faster: of 1024, 2048 and 4096, 1024 was fastest on
# BRIGHTER texts (BENCHMARKS.md, "Batching in nlp.pipe"); a GPU may want more.
DEFAULT_MAX_BATCH_WORDPIECES = 1024


def CheckedTransformerModel(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    input_prefix: str = "",
    max_batch_wordpieces: int = DEFAULT_MAX_BATCH_WORDPIECES,
    quantize: str = NONE,
) -> TransformerModel:
    """A TransformerModel whose initialization names a missing encoder clearly,
    whose forward pass warns (W010) when wordpieces are cut, and which binds a
    span getter that counts wordpieces (it has ``bind_model``) to itself.

    name (str): Hugging Face model name or local folder.
    get_spans (Callable[[List[Doc]], List[List[Span]]]): The windows to encode.
    tokenizer_config (Optional[dict]): Settings passed to the Hugging Face tokenizer.
    transformer_config (Optional[dict]): Settings passed to the Hugging Face model.
    mixed_precision (bool): Use mixed precision on GPU.
    grad_scaler_config (Optional[dict]): Settings of the PyTorch gradient scaler.
    input_prefix (str): Text the tokenizer puts before every window, e.g.
        "query: " for the e5 encoders ("" for none; layers/input_prefix.py).
    max_batch_wordpieces (int): The encoder runs a batch's windows sorted by
        length, in groups of at most this many wordpieces once padded, so a
        window pads to its neighbours' length, not the batch's longest
        (layers/length_groups.py); 0 runs each batch whole, as
        spacy-transformers does. Outputs are the same to float rounding.
    quantize (str): "none" (fp32, the default, as before this setting
        existed: what training needs), "int8" (dynamic int8 of the encoder's
        linear layers but the feed-forward outputs, CPU inference only) or
        "int8-embeddings" (also the word embeddings, 8-bit weight-only),
        applied as the weights load. Set by ``spacy-mlbert quantize``.
    RETURNS (TransformerModel): The transformer.
    """
    model = TransformerModel(
        name,
        get_spans,
        dict(tokenizer_config or {}),
        transformer_config=dict(transformer_config or {}),
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config or {}),
    )
    model.attrs["input_prefix"] = input_prefix
    if max_batch_wordpieces < 0:
        raise ValueError(Errors.E220.format(value=max_batch_wordpieces))
    # on the layer's forward, not in attrs: attrs are saved with the weights,
    # and the config is what decides (a copy deep-copies the layer with it)
    group_by_length(model.layers[0], max_batch_wordpieces)
    model.attrs["quantize"] = check_quantize(quantize)
    return _add_checks(model)


def _add_checks(model: TransformerModel) -> TransformerModel:
    model.init = partial(_init_with_clear_errors, model.init)
    model._func = partial(_forward_counting_cuts, model._func)
    model.copy = partial(_copy_checked, model)
    model.attrs["replace_listener_cfg"] = _replace_listener_cfg
    shim = model.layers[0].shims[0]
    shim.use_params = partial(_use_params_by_optimizer_key, shim)
    install_lean_weights(model)
    # quantization.py: weights saved quantized load into the same quantized
    # modules; fp32 ones are quantized as they load when quantize is set
    shim.model_cls = QuantizedAutoModel
    shim.from_bytes = partial(from_bytes_quantizing, shim.from_bytes, shim)
    set_quantize(model, model.attrs.get("quantize", NONE))
    # A span getter that measures wordpieces (spacy-mlbert.wordpiece_strided_spans.v1)
    # reads the tokenizer from this model whenever it makes windows.
    get_spans = model.attrs["get_spans"]
    if hasattr(get_spans, "bind_model"):
        get_spans.bind_model(model)
    return model


def _copy_checked(model: TransformerModel) -> TransformerModel:
    """``model.copy()`` (used by ``nlp.replace_listeners``) keeping the checks.

    spacy-transformers' copy builds a plain TransformerModel named after the
    thinc layer; here the copy keeps the encoder's name, its own span getter
    (bound to the copy) and the E010/W010 checks.
    """
    copied = TransformerModel.copy(model)
    copied.attrs["name"] = model.attrs["name"]
    copied.attrs["get_spans"] = copy.copy(model.attrs["get_spans"])
    copied.attrs["input_prefix"] = model.attrs.get("input_prefix", "")
    copied.attrs["quantize"] = model.attrs.get("quantize", NONE)  # _add_checks sets it
    return _add_checks(copied)


@contextlib.contextmanager
def _use_params_by_optimizer_key(shim, params: dict):
    """Swap in the weights of ``params`` keyed ``(shim.id, name)`` (the
    optimizer's averages) for the duration; other keys go to the shim's own
    ``use_params``. Weights without an entry (frozen ones) stay as they are."""
    named = shim._model.named_parameters() if shim._model is not None else []
    swapped = [(param, params[(shim.id, name)]) for name, param in named if (shim.id, name) in params]
    if not swapped:
        with type(shim).use_params(shim, params):
            yield
        return
    backup = [param.detach().clone() for param, _ in swapped]
    for param, value in swapped:
        param.data.copy_(xp2torch(value, device=param.device))
    try:
        yield
    finally:
        for (param, _), saved in zip(swapped, backup):
            param.data.copy_(saved)


def _replace_listener_cfg(transformer_cfg: dict, listener_cfg: dict) -> dict:
    """The config of a listener replaced by its own copy of the transformer:
    for a WordpieceListener, a WordpieceTransformer with the listener's
    pooling; spacy-transformers' own listeners get spacy-transformers' answer
    (its Tok2VecTransformer has no input_prefix: the copied tokenizer, saved
    with the pipeline, still puts it).
    """
    if "spacy-mlbert.WordpieceListener" not in listener_cfg.get("@architectures", ""):
        plain = {key: value for key, value in transformer_cfg.items() if key not in ("input_prefix", "quantize", "max_batch_wordpieces")}
        for key in ("tokenizer_config", "transformer_config", "grad_scaler_config"):
            if key in plain and plain[key] is None:  # Optional here, dicts there
                plain[key] = {}
        return replace_listener_cfg(plain, listener_cfg)
    result = dict(transformer_cfg)
    # the same version: a v2 listener's pooling is v2's
    version = listener_cfg["@architectures"].rsplit(".", 1)[-1]
    result["@architectures"] = f"spacy-mlbert.WordpieceTransformer.{version}"
    for key in ("pooling", "grad_factor"):  # input_prefix is in transformer_cfg
        if key in listener_cfg:
            result[key] = listener_cfg[key]
    return result


def _init_with_clear_errors(original_init: Callable, model, X=None, Y=None) -> None:
    name = model.attrs["name"]
    if model.attrs.get("quantize", NONE) != NONE:
        # initialize is where training starts (spacy train, nlp.initialize)
        raise ValueError(Errors.E201.format(what="initialize (training)", quantize=model.attrs["quantize"]))
    try:
        original_init(model, X=X, Y=Y)
    except (OSError, ValueError) as err:
        # Hugging Face's message for a missing local folder talks about repo
        # ids; say what the user can do instead.
        if Path(name).expanduser().exists():
            raise
        raise ValueError(f"{Errors.E010.format(path=name)} (Hugging Face said: {err})") from err
    # after loading the encoder's tokenizer from its source; a saved pipeline
    # brings the prefix in its own tokenizer files
    add_input_prefix(model.tokenizer, model.attrs.get("input_prefix", ""))


def _forward_counting_cuts(
    original_forward: Callable, model: TransformerModel, docs: List[Doc], is_train: bool
) -> Tuple[FullTransformerBatch, Callable]:
    if is_train:
        if model.attrs.get("quantize", NONE) != NONE:
            raise ValueError(Errors.E202.format(quantize=model.attrs["quantize"]))
        # a loaded encoder's weights may still be views of the file's bytes
        own_borrowed_weights(model.layers[0].shims[0])
    sync_quantization(model)  # e.g. quantize set on an encoder in memory
    output, backprop = original_forward(model, docs, is_train=is_train)
    n_docs, n_windows, n_wordpieces = count_cut_wordpieces(model.tokenizer, output)
    if n_windows:
        message = Warnings.W010.format(
            docs=n_docs,
            windows=n_windows,
            max_length=model.tokenizer.model_max_length,
            wordpieces=n_wordpieces,
        )
        # warnings.warn would keep every distinct message (they hold counts)
        # in this module's __warningregistry__ for good: a slow leak in a
        # long-running service. A registry of None keeps nothing.
        warnings.warn_explicit(message, UserWarning, __file__, 0, module=__name__, registry=None)
    return output, backprop


def count_cut_wordpieces(tokenizer, output: FullTransformerBatch) -> Tuple[int, int, int]:
    """Count the windows that spacy-transformers cut to the encoder's limit.

    A cut window fills the limit and does not end with the tokenizer's closing
    special token (</s>, [SEP]), which is the first wordpiece to go. Only such
    windows are tokenized again, to count what was dropped.

    tokenizer (PreTrainedTokenizerBase): The encoder's tokenizer.
    output (FullTransformerBatch): The transformer's output for a batch.
    RETURNS (Tuple[int, int, int]): Documents, windows and wordpieces cut.
    """
    max_length = getattr(tokenizer, "model_max_length", None)
    input_ids = output.wordpieces.input_ids
    if max_length is None or max_length >= NO_MAX_LENGTH or input_ids.shape[1] < max_length:
        return 0, 0, 0
    lengths = output.wordpieces.attention_mask.sum(axis=1)
    closing_id = _closing_special_id(tokenizer)
    n_docs = n_windows = n_wordpieces = 0
    row = 0
    for doc_spans in output.spans:
        cut_here = False
        for span in doc_spans:
            full = int(lengths[row]) >= max_length
            if full and (closing_id is None or int(input_ids[row, max_length - 1]) != closing_id):
                encoding = tokenizer(span.text, add_special_tokens=True, verbose=False)
                cut = len(encoding["input_ids"]) - max_length
                if cut > 0:
                    n_windows += 1
                    n_wordpieces += cut
                    cut_here = True
            row += 1
        n_docs += int(cut_here)
    return n_docs, n_windows, n_wordpieces


def _closing_special_id(tokenizer) -> Optional[int]:
    """The special token the tokenizer puts after a text (</s>, [SEP]), or
    None if it puts none. Not all_special_ids: [UNK] is one of them, and a
    cut window can well end with it."""
    with_specials = tokenizer("a", add_special_tokens=True, verbose=False)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False, verbose=False)["input_ids"]
    if not with_specials or (plain and with_specials[-len(plain) :] == plain):
        return None  # nothing after the text
    last = int(with_specials[-1])
    return last if last in tokenizer.all_special_ids else None
