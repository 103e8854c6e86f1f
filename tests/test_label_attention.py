"""Label attention (spacy-mlbert.LabelAttentionClassifier.v1): its gradients,
its start as mean pooling, training, saving and growing."""
import numpy
import pytest
import spacy
from spacy.util import fix_random_seed, make_tempdir
from spacy_transformers.data_classes import TransformerData, WordpieceBatch
from transformers.file_utils import ModelOutput

from spacy_mlbert.layers import LabelAttention, resize_label_attention
from util import TWO_WINDOWS_COUNTED, make_examples, make_nlp, two_overlapping_windows

LABEL_ATTENTION_MODEL = {
    "@architectures": "spacy-mlbert.LabelAttentionClassifier.v1",
    "dropout": 0.1,
    "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "none"},
}


def _trf_data(hidden: numpy.ndarray, mask: numpy.ndarray) -> TransformerData:
    """TransformerData with the given (windows, wordpieces, width) output."""
    n_windows, n_pieces, _ = hidden.shape
    wordpieces = WordpieceBatch(
        strings=[["x"] * n_pieces for _ in range(n_windows)],
        input_ids=numpy.zeros((n_windows, n_pieces), dtype="i"),
        attention_mask=mask.astype("f"),
        lengths=[int(row.sum()) for row in mask],
        token_type_ids=None,
    )
    return TransformerData(
        wordpieces=wordpieces,
        model_output=ModelOutput(last_hidden_state=hidden.astype("f")),
        align=None,
    )


def _batch(seed: int = 0, width: int = 5):
    rng = numpy.random.RandomState(seed)
    two_windows = numpy.ones((2, 4))
    two_windows[1, 3] = 0.0  # padding in the second window
    one_window = numpy.array([[1.0, 1.0, 1.0, 0.0, 0.0]])
    return [
        _trf_data(rng.normal(size=(2, 4, width)), two_windows),
        _trf_data(rng.normal(size=(1, 5, width)), one_window),
    ]


def _layer(n_labels: int = 3, width: int = 5, seed: int = 0) -> LabelAttention:
    layer = LabelAttention(n_labels, width, dropout=0.0)
    layer.initialize()
    rng = numpy.random.RandomState(seed)
    # queries away from zero, so that the attention is not uniform
    layer.set_param("Q", rng.normal(size=(n_labels, width)).astype("f"))
    return layer


def _loss(layer, X, weights) -> float:
    Y, _ = layer(X, is_train=True)
    return float((Y * weights).sum())


def _numeric_grad(values: numpy.ndarray, loss, eps: float = 1e-2) -> numpy.ndarray:
    """Central differences of ``loss()`` in every entry of ``values``,
    changed in place and restored (float32, hence the large step)."""
    grad = numpy.zeros_like(values)
    for index in numpy.ndindex(values.shape):
        saved = values[index]
        values[index] = saved + eps
        up = loss()
        values[index] = saved - eps
        down = loss()
        values[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


def test_label_attention_gradients_match_finite_differences():
    """backprop of sum(Y * weights) against central differences for every
    parameter and for the wordpiece vectors."""
    layer = _layer()
    X = _batch()
    weights = numpy.random.RandomState(1).normal(size=(2, 3)).astype("f")
    Y, backprop = layer(X, is_train=True)
    d_inputs = backprop(weights)
    loss = lambda: _loss(layer, X, weights)  # noqa: E731
    for name in ("Q", "W", "b"):
        numeric = _numeric_grad(layer.get_param(name), loss)
        numpy.testing.assert_allclose(layer.get_grad(name), numeric, rtol=1e-2, atol=2e-3, err_msg=name)
    for trf_data, d_input in zip(X, d_inputs):
        hidden = trf_data.model_output.last_hidden_state
        analytic = d_input.model_output.last_hidden_state
        numpy.testing.assert_allclose(analytic, _numeric_grad(hidden, loss), rtol=1e-2, atol=2e-3)
        mask = trf_data.wordpieces.attention_mask[:, : hidden.shape[1]]
        assert numpy.all(analytic[mask == 0] == 0.0)  # padding gets no gradient


def test_label_attention_starts_as_mean_pooling():
    """Zero queries (the initial state) attend uniformly: each label scores the
    standardised mean of the unmasked wordpieces with its own weights."""
    layer = LabelAttention(3, 5, dropout=0.0)
    layer.initialize()
    X = _batch()
    Y = layer.predict(X)
    W, b = layer.get_param("W"), layer.get_param("b")
    for row, trf_data in zip(Y, X):
        hidden = trf_data.model_output.last_hidden_state
        mask = trf_data.wordpieces.attention_mask[:, : hidden.shape[1]] > 0
        mean = hidden[mask].mean(axis=0)
        normed = (mean - mean.mean()) / numpy.sqrt(mean.var() + 1e-5)
        numpy.testing.assert_allclose(row, W @ normed + b, rtol=1e-4, atol=1e-5)
    assert not numpy.allclose(Y[0], Y[1])


def test_label_attention_labels_attend_differently():
    layer = _layer()
    X = _batch()
    uniform = LabelAttention(3, 5, dropout=0.0)
    uniform.initialize()
    for name in ("W", "b"):
        uniform.set_param(name, layer.get_param(name))
    assert not numpy.allclose(layer.predict(X), uniform.predict(X))


def test_label_attention_empty_document_gives_the_biases():
    layer = _layer()
    empty = TransformerData.empty()
    Y, backprop = layer([empty, *_batch()], is_train=True)
    numpy.testing.assert_array_equal(Y[0], layer.get_param("b"))
    assert len(backprop(numpy.ones_like(Y))) == 2  # the doc without windows sends nothing back


def test_label_attention_coded_errors():
    with pytest.raises(ValueError, match="E150"):
        LabelAttention(2, 4, dropout=1.0)
    unpooled = {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "none"}
    with pytest.raises(ValueError, match="E151"):
        spacy.registry.resolve({"m": {**unpooled, "grad_factor": 0.5}})
    # only a scaled gradient is refused: grad_factor 1.0 builds the unpooled listener
    explicit = spacy.registry.resolve({"m": {**unpooled, "grad_factor": 1.0}})["m"]
    assert [layer.name for layer in explicit.layers] == ["transformer-listener", "noop"]
    listener = spacy.registry.resolve({"m": LABEL_ATTENTION_MODEL["tok2vec"]})["m"]
    assert [layer.name for layer in listener.layers] == ["transformer-listener", "noop"]
    inline = {
        "@architectures": "spacy-mlbert.WordpieceTransformer.v1",
        "name": "unused-until-initialize",
        "get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
        "pooling": "none",
    }
    assert spacy.registry.resolve({"m": inline})["m"].layers[-1].name == "noop"


def test_label_attention_classifier_trains_saves_loads_and_grows(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"model": LABEL_ATTENTION_MODEL})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    textcat = nlp.get_pipe("mlbert_textcat")
    layer = textcat.model.get_ref("output_layer")
    assert layer.name == "label_attention" and layer.get_dim("nO") == len(textcat.labels)
    losses = [nlp.update(examples, sgd=optimizer)["mlbert_textcat"] for _ in range(12)]
    assert losses[-1] < losses[0]
    assert numpy.abs(textcat.model.get_ref("output_layer").get_param("Q")).sum() > 0  # the queries learned
    texts = ["这个产品很好", "Slow delivery.", ""]
    expected = [doc.cats for doc in nlp.pipe(texts)]
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        loaded = spacy.load(tmp_dir)
    assert [doc.cats for doc in loaded.pipe(texts)] == expected
    again = spacy.blank("xx").from_config(nlp.config)
    again.from_bytes(nlp.to_bytes())
    assert [doc.cats for doc in again.pipe(texts)] == expected
    # a new label keeps what the others learned
    before = {name: textcat.model.get_ref("output_layer").get_param(name).copy() for name in ("Q", "W", "b")}
    textcat.add_label("brand_new")
    grown = textcat.model.get_ref("output_layer")
    assert grown.get_dim("nO") == len(before["b"]) + 1 and textcat.model.layers[-1] is grown
    for name, values in before.items():
        numpy.testing.assert_array_equal(grown.get_param(name)[: len(values)], values)
    assert not grown.get_param("Q")[-1].any()  # the new label starts uniform
    nlp.update(make_examples(nlp), sgd=optimizer)  # and trains with the optimizer in use


@pytest.mark.parametrize("count_once", [False, True])
def test_label_attention_v2_attends_over_each_wordpiece_once(count_once):
    """v2 (count_once) starts as v2's mean pooling over the wordpieces of
    overlapping windows counted once, and sends no gradient to the rows it
    leaves out; v1 attends over every row of both windows."""
    trf_data = two_overlapping_windows(width=5)
    hidden = trf_data.model_output.last_hidden_state
    rows = [hidden[w, j] for w, j in TWO_WINDOWS_COUNTED] if count_once else list(hidden.reshape((12, 5)))
    layer = LabelAttention(3, 5, dropout=0.0, count_once=count_once)
    layer.initialize()
    pooled = numpy.mean(rows, axis=0)
    normed = (pooled - pooled.mean()) / numpy.sqrt(pooled.var() + 1e-5)
    expected = layer.get_param("W") @ normed + layer.get_param("b")
    numpy.testing.assert_allclose(layer.predict([trf_data])[0], expected, rtol=1e-4, atol=1e-5)
    layer.set_param("Q", numpy.random.RandomState(1).normal(size=(3, 5)).astype("f"))
    Y, backprop = layer([trf_data], is_train=True)
    d_hidden = backprop(numpy.ones_like(Y))[0].model_output.last_hidden_state
    reached = {(w, j) for w in range(2) for j in range(6) if numpy.any(d_hidden[w, j] != 0)}
    assert reached == (set(TWO_WINDOWS_COUNTED) if count_once else {(w, j) for w in range(2) for j in range(6)})
    assert resize_label_attention(layer, 4).attrs["count_once"] is count_once
    v2 = {**LABEL_ATTENTION_MODEL, "@architectures": "spacy-mlbert.LabelAttentionClassifier.v2"}
    assert spacy.registry.resolve({"m": v2})["m"].get_ref("output_layer").attrs["count_once"] is True
