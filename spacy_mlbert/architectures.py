"""Registered model architectures. They only wire layers together.

Once a ``.vN`` name is released its behaviour never changes; a change gets a
new version registered beside the old one.
"""
from typing import Callable, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import TransformerData
from spacy_transformers.layers import TransformerListener
from spacy_transformers.layers.split_trf import split_trf_batch
from thinc.api import Dropout, LayerNorm, Linear, Model, chain, noop
from thinc.types import Floats2d

from .errors import Errors
from .layers.transformer import DEFAULT_MAX_BATCH_WORDPIECES
from .layers import CheckedTransformerModel, LabelAttention, MultiSampleDropout, WordpiecePooling, resize_label_attention, sum_logits


# spacy-transformers' TransformerModel.v3 for the shared ``transformer``
# component, with the checks of CheckedTransformerModel (E010, W010).
build_transformer_model_v1 = registry.architectures("spacy-mlbert.TransformerModel.v1")(CheckedTransformerModel)


@registry.architectures("spacy-mlbert.WordpieceListener.v1")
def build_wordpiece_listener_v1(
    upstream: str = "*", pooling: str = "mean", grad_factor: float = 1.0
) -> Model[List[Doc], Floats2d]:
    """One vector per document from a shared ``transformer`` component.

    v1's "mean" counts every row of every window: the wordpieces of an
    overlap of strided windows twice, and each window's special tokens; v2
    counts each wordpiece once. Kept for the pipelines trained with it.

    upstream (str): Name of the transformer component to listen to; "*" takes
        the first one in the pipeline.
    pooling (str): "mean" (all wordpieces of all windows), "cls" (first
        wordpiece), or "none": no pooling, each document's TransformerData
        is returned for a head that pools itself (LabelAttentionClassifier).
    grad_factor (float): Scales the gradient this component sends to the transformer.
    RETURNS (Model[List[Doc], Floats2d]): The document encoder.
    """
    return _wordpiece_listener(upstream, pooling, grad_factor, count_once=False)


@registry.architectures("spacy-mlbert.WordpieceListener.v2")
def build_wordpiece_listener_v2(
    upstream: str = "*", pooling: str = "mean", grad_factor: float = 1.0
) -> Model[List[Doc], Floats2d]:
    """One vector per document from a shared ``transformer`` component; its
    "mean" counts each wordpiece of the document once, however many of the
    overlapping windows encoded it (layers/wordpiece_pooling.py,
    counted_rows), and the special tokens once per document. A document
    of one window gets v1's vector.

    upstream (str): Name of the transformer component to listen to; "*" takes
        the first one in the pipeline.
    pooling (str): "mean", "cls" (first wordpiece) or "none" (unpooled, for
        LabelAttentionClassifier), as in v1.
    grad_factor (float): Scales the gradient this component sends to the transformer.
    RETURNS (Model[List[Doc], Floats2d]): The document encoder.
    """
    return _wordpiece_listener(upstream, pooling, grad_factor, count_once=True)


def _wordpiece_listener(upstream: str, pooling: str, grad_factor: float, *, count_once: bool) -> Model:
    listener = TransformerListener(upstream_name=upstream)
    model = chain(listener, _pooling_layer(pooling, grad_factor, count_once))
    model.set_ref("listener", listener)
    return model


# A listener's pooling for heads that pool the wordpieces themselves: the
# listener then returns each document's TransformerData as it is.
UNPOOLED = "none"


def _pooling_layer(pooling: str, grad_factor: float, count_once: bool) -> Model:
    """WordpiecePooling, or for "none" a no-op in its place (the listeners
    keep one shape whatever the pooling)."""
    if pooling != UNPOOLED:
        return WordpiecePooling(pooling, grad_factor=grad_factor, count_once=count_once)
    if grad_factor != 1.0:
        raise ValueError(Errors.E151.format(value=grad_factor))
    return noop()


@registry.architectures("spacy-mlbert.WordpieceTransformer.v1")
def build_wordpiece_transformer_v1(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    pooling: str = "mean",
    grad_factor: float = 1.0,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    input_prefix: str = "",
    max_batch_wordpieces: int = DEFAULT_MAX_BATCH_WORDPIECES,
    quantize: str = "none",
) -> Model[List[Doc], Floats2d]:
    """One vector per document from a transformer owned by this component
    (no shared ``transformer`` component needed). Its "mean" counts every
    row of every window, as WordpieceListener.v1's; v2 counts each wordpiece once.

    name (str): Hugging Face model name or local folder.
    get_spans (Callable[[List[Doc]], List[List[Span]]]): The windows to encode.
    tokenizer_config (Optional[dict]): Settings passed to the Hugging Face tokenizer.
    transformer_config (Optional[dict]): Settings passed to the Hugging Face model.
    pooling (str): "mean", "cls" or "none", as for WordpieceListener.v1.
    grad_factor (float): Scales the gradient sent to the transformer.
    mixed_precision (bool): Use mixed precision on GPU.
    grad_scaler_config (Optional[dict]): Settings of the PyTorch gradient scaler.
    input_prefix (str): Text the tokenizer puts before every window, as for
        TransformerModel.v1.
    max_batch_wordpieces (int): Length groups of the encoder, as for
        TransformerModel.v1.
    quantize (str): "none" (fp32, the default, as before this setting
        existed), "int8" or "int8-embeddings", as for TransformerModel.v1.
    RETURNS (Model[List[Doc], Floats2d]): The document encoder.
    """
    return _wordpiece_transformer(
        name, get_spans, tokenizer_config, transformer_config, pooling, grad_factor,
        mixed_precision, grad_scaler_config, input_prefix, max_batch_wordpieces, quantize, count_once=False,
    )


@registry.architectures("spacy-mlbert.WordpieceTransformer.v2")
def build_wordpiece_transformer_v2(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[dict] = None,
    transformer_config: Optional[dict] = None,
    pooling: str = "mean",
    grad_factor: float = 1.0,
    mixed_precision: bool = False,
    grad_scaler_config: Optional[dict] = None,
    input_prefix: str = "",
    max_batch_wordpieces: int = DEFAULT_MAX_BATCH_WORDPIECES,
    quantize: str = "none",
) -> Model[List[Doc], Floats2d]:
    """WordpieceTransformer.v1 whose "mean" counts each wordpiece of the
    document once, as WordpieceListener.v2's (what ``nlp.replace_listeners``
    makes of a v2 listener).

    name (str): Hugging Face model name or local folder.
    get_spans (Callable[[List[Doc]], List[List[Span]]]): The windows to encode.
    tokenizer_config (Optional[dict]): Settings passed to the Hugging Face tokenizer.
    transformer_config (Optional[dict]): Settings passed to the Hugging Face model.
    pooling (str): "mean", "cls" or "none", as for WordpieceListener.v2.
    grad_factor (float): Scales the gradient sent to the transformer.
    mixed_precision (bool): Use mixed precision on GPU.
    grad_scaler_config (Optional[dict]): Settings of the PyTorch gradient scaler.
    input_prefix (str): Text the tokenizer puts before every window, as for
        TransformerModel.v1.
    max_batch_wordpieces (int): Length groups of the encoder, as for
        TransformerModel.v1.
    quantize (str): "none", "int8" or "int8-embeddings", as for TransformerModel.v1.
    RETURNS (Model[List[Doc], Floats2d]): The document encoder.
    """
    return _wordpiece_transformer(
        name, get_spans, tokenizer_config, transformer_config, pooling, grad_factor,
        mixed_precision, grad_scaler_config, input_prefix, max_batch_wordpieces, quantize, count_once=True,
    )


def _wordpiece_transformer(
    name: str,
    get_spans: Callable,
    tokenizer_config: Optional[dict],
    transformer_config: Optional[dict],
    pooling: str,
    grad_factor: float,
    mixed_precision: bool,
    grad_scaler_config: Optional[dict],
    input_prefix: str,
    max_batch_wordpieces: int,
    quantize: str,
    *,
    count_once: bool,
) -> Model:
    transformer = CheckedTransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
        input_prefix=input_prefix,
        max_batch_wordpieces=max_batch_wordpieces,
        quantize=quantize,
    )
    # chain(chain(transformer, split), pooling): the shape that
    # nlp.replace_listeners leaves in a WordpieceListener, so that a pipeline
    # whose listener was replaced loads from its config.
    pooled = _pooling_layer(pooling, grad_factor, count_once)
    model = chain(chain(transformer, split_trf_batch()), pooled)
    model.set_ref("transformer", transformer)
    return model


@registry.architectures("spacy-mlbert.MultiLabelClassifier.v1")
def build_multilabel_classifier_v1(
    tok2vec: Model[List[Doc], Floats2d],
    *,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Document vector -> dropout -> linear: one logit per label.

    The model returns logits, not probabilities: the component computes binary
    cross-entropy on the logits (numerically stable) and applies the sigmoid
    when it predicts.

    tok2vec (Model[List[Doc], Floats2d]): One vector per document, e.g.
        "spacy-mlbert.WordpieceListener.v1". Named ``tok2vec`` like the
        sub-layer of spaCy's own text classifiers: ``nlp.replace_listeners``
        looks for a listener's config under that key.
    dropout (float): Dropout rate before the output layer.
    nO (Optional[int]): Number of labels, inferred at initialization if None.
    RETURNS (Model[List[Doc], Floats2d]): Logits, shape (n_docs, n_labels).
    """
    return build_multilabel_classifier_v2(tok2vec, normalize=False, dropout=dropout, nO=nO)


@registry.architectures("spacy-mlbert.MultiLabelClassifier.v2")
def build_multilabel_classifier_v2(
    tok2vec: Model[List[Doc], Floats2d],
    *,
    normalize: bool = True,
    dropout: float = 0.1,
    nO: Optional[int] = None,
    dropout_samples: int = 1,
) -> Model[List[Doc], Floats2d]:
    """Document vector -> layer norm -> dropout -> linear: one logit per label.

    The layer norm is what v1 lacks. Pooled encoder outputs differ little
    from one document to the next (multilingual-e5-small: a spread of about
    0.1 per dimension around a large shared vector), so a linear layer
    trained at a fine-tuning learning rate needs hundreds of steps before
    its logits separate the labels; normalising the vector first scales
    those differences up (benchmarks: BENCHMARKS.md#experiments).

    tok2vec (Model[List[Doc], Floats2d]): One vector per document, as in v1.
    normalize (bool): Apply a layer norm (learned gain and bias) to the
        document vector; False gives v1's model.
    dropout (float): Dropout rate before the output layer.
    nO (Optional[int]): Number of labels, inferred at initialization if None.
    dropout_samples (int): Dropout masks averaged per training step
        (multi-sample dropout, layers/multi_sample_dropout.py); 1: thinc's Dropout.
    RETURNS (Model[List[Doc], Floats2d]): Logits, shape (n_docs, n_labels).
    """
    drop = Dropout(dropout) if dropout_samples == 1 else MultiSampleDropout(dropout, dropout_samples)
    between = [LayerNorm(), drop] if normalize else [drop]
    output_layer = Linear(nO=nO)
    model = chain(tok2vec, *between, output_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = True
    model.attrs["resize_output"] = resize_output
    return model


@registry.architectures("spacy-mlbert.MultiLabelClassifier.v3")
def build_multilabel_classifier_v3(
    tok2vec: Model[List[Doc], Floats2d],
    linear_model: Optional[Model[List[Doc], Floats2d]] = None,
    *,
    normalize: bool = True,
    dropout: float = 0.1,
    nO: Optional[int] = None,
    dropout_samples: int = 1,
) -> Model[List[Doc], Floats2d]:
    """v2's head, plus an optional sparse model whose logits are added to the
    head's: a bag of words (``spacy.TextCatBOW.v3`` with
    ``no_output_layer = true``) remembers words that tell a label apart
    from a few examples, which a fine-tuned encoder learns slowly.

    tok2vec (Model[List[Doc], Floats2d]): One vector per document, as in v2.
    linear_model (Optional[Model[List[Doc], Floats2d]]): Returns one logit
        per label from the docs; None gives v2's model.
    normalize (bool): Layer norm on the document vector, as in v2.
    dropout (float): Dropout rate before the head's output layer.
    nO (Optional[int]): Number of labels, inferred at initialization if None.
    dropout_samples (int): Dropout masks averaged per training step, as in v2.
    RETURNS (Model[List[Doc], Floats2d]): Logits, shape (n_docs, n_labels).
    """
    head = build_multilabel_classifier_v2(tok2vec, normalize=normalize, dropout=dropout, nO=nO, dropout_samples=dropout_samples)
    if linear_model is None:
        return head
    model = sum_logits(head, linear_model)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("head", head)
    model.set_ref("linear_model", linear_model)
    model.attrs["multi_label"] = True
    model.attrs["resize_output"] = _resize_branches
    if nO is not None:
        model.set_dim("nO", nO)
    return model


def _resize_branches(model: Model, new_nO: int) -> Model:
    for ref in ("head", "linear_model"):
        branch = model.get_ref(ref)
        branch.attrs["resize_output"](branch, new_nO)
    model.set_dim("nO", new_nO, force=True)
    return model


@registry.architectures("spacy-mlbert.LabelAttentionClassifier.v1")
def build_label_attention_classifier_v1(
    tok2vec: Model[List[Doc], List[TransformerData]],
    *,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """One learned query per label attends over the document's wordpieces;
    each label scores the vector it pooled (layers/label_attention.py).
    It attends over every row of every window (an overlap of strided windows
    twice); v2 over each wordpiece once.

    tok2vec (Model[List[Doc], List[TransformerData]]): The wordpieces of each
        document, unpooled: "spacy-mlbert.WordpieceListener.v1" with
        ``pooling = "none"``.
    dropout (float): Dropout rate on each label's pooled vector.
    nO (Optional[int]): Number of labels, inferred at initialization if None.
    RETURNS (Model[List[Doc], Floats2d]): Logits, shape (n_docs, n_labels).
    """
    return _label_attention_classifier(tok2vec, dropout, nO, count_once=False)


@registry.architectures("spacy-mlbert.LabelAttentionClassifier.v2")
def build_label_attention_classifier_v2(
    tok2vec: Model[List[Doc], List[TransformerData]],
    *,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """LabelAttentionClassifier.v1 attending over each wordpiece of the
    document once: an overlap of strided windows is read in one of its
    windows and the special tokens once per document, as
    WordpieceListener.v2's mean counts them (v1 attends over every row of
    every window).

    tok2vec (Model[List[Doc], List[TransformerData]]): The wordpieces of each
        document, unpooled, as in v1.
    dropout (float): Dropout rate on each label's pooled vector.
    nO (Optional[int]): Number of labels, inferred at initialization if None.
    RETURNS (Model[List[Doc], Floats2d]): Logits, shape (n_docs, n_labels).
    """
    return _label_attention_classifier(tok2vec, dropout, nO, count_once=True)


def _label_attention_classifier(tok2vec: Model, dropout: float, nO: Optional[int], *, count_once: bool) -> Model:
    output_layer = LabelAttention(nO, dropout=dropout, count_once=count_once)
    model = chain(tok2vec, output_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = True
    model.attrs["resize_output"] = _resize_label_attention
    return model


def _resize_label_attention(model: Model, new_nO: int) -> Model:
    old_layer = model.get_ref("output_layer")
    new_layer = resize_label_attention(old_layer, new_nO)
    model.layers[model.layers.index(old_layer)] = new_layer
    model.set_ref("output_layer", new_layer)
    model.set_dim("nO", new_nO, force=True)
    return model


def resize_output(model: Model, new_nO: int) -> Model:
    """Grow the output layer to ``new_nO`` labels, keeping learned weights.

    thinc cannot change a dimension of a layer that has parameters, so a
    trained output layer is replaced by a larger one holding the old rows.
    """
    old_layer = model.get_ref("output_layer")
    if old_layer.has_param("W") is not True:
        old_layer.set_dim("nO", new_nO, force=True)
        model.set_dim("nO", new_nO, force=True)
        return model
    old_W = old_layer.get_param("W")
    old_b = old_layer.get_param("b")
    old_nO, nI = old_W.shape
    new_layer = Linear(nO=new_nO, nI=nI)
    new_layer.initialize()
    new_W = new_layer.get_param("W").copy()
    new_b = new_layer.get_param("b").copy()
    new_W[:old_nO] = old_W
    new_b[:old_nO] = old_b
    new_layer.set_param("W", new_W)
    new_layer.set_param("b", new_b)
    model.layers[model.layers.index(old_layer)] = new_layer
    model.set_ref("output_layer", new_layer)
    model.set_dim("nO", new_nO, force=True)
    return model
