import numpy
import pytest
import spacy
import srsly
from spacy.util import fix_random_seed, make_tempdir, registry

from spacy_mlbert.layers import WordpiecePooling
from util import V1_MODEL, make_examples, make_nlp, transformer_config

CHINESE = "这个产品很好，非常实用。我很喜欢它"


def _encoded(encoder_dir, text):
    """A doc with the transformer's output, and the pooling layers to test on it."""
    nlp = spacy.blank("xx")
    nlp.add_pipe("transformer", config=transformer_config(encoder_dir))
    nlp.initialize()
    return nlp(text)


def test_architectures_pooling_reads_wordpieces_not_spacy_tokens(tiny_xlmr_dir):
    doc = _encoded(tiny_xlmr_dir, CHINESE)
    assert len(doc) == 1  # spaCy's xx tokenizer keeps the sentence as one token
    trf_data = doc._.trf_data
    hidden = trf_data.model_output.last_hidden_state
    mask = trf_data.wordpieces.attention_mask
    assert hidden.shape[1] > 3  # many wordpieces behind the one token
    cls = WordpiecePooling("cls").predict([trf_data])
    numpy.testing.assert_allclose(cls[0], hidden[0, 0], rtol=1e-6)
    mean = WordpiecePooling("mean").predict([trf_data])
    expected = (hidden * mask[:, :, None]).sum(axis=(0, 1)) / mask.sum()
    numpy.testing.assert_allclose(mean[0], expected, rtol=1e-5)
    # spacy-transformers' own token pooling would give the mean of the token's
    # wordpieces without <s> and </s>: a different vector
    assert not numpy.allclose(mean[0], hidden[0, 1:-1].mean(axis=0))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_architectures_pooling_backprop_shapes(tiny_xlmr_dir, pooling):
    doc = _encoded(tiny_xlmr_dir, "Ce produit est incroyable.")
    empty = _encoded(tiny_xlmr_dir, "")
    layer = WordpiecePooling(pooling)
    Y, backprop = layer([doc._.trf_data, empty._.trf_data], is_train=True)
    assert Y.shape == (2, doc._.trf_data.width)
    assert numpy.all(Y[1] == 0.0)  # an empty doc pools to zeros
    d_trf = backprop(numpy.ones_like(Y))
    assert len(d_trf) == 1  # the empty doc (no windows) sends nothing back
    d_hidden = d_trf[0].model_output.last_hidden_state
    assert d_hidden.shape == doc._.trf_data.model_output.last_hidden_state.shape
    assert d_hidden.sum() == pytest.approx(Y.shape[1], rel=1e-5)  # weights sum to 1


def test_architectures_unknown_pooling_is_a_coded_error():
    with pytest.raises(ValueError, match=r"E001.*max.*cls, mean"):
        WordpiecePooling("max")


def test_architectures_classifier_config_is_serializable():
    cfg = {
        "@architectures": "spacy-mlbert.MultiLabelClassifier.v2",
        "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "mean"},
    }
    filled = registry.fill({"model": cfg})
    assert srsly.is_json_serializable(filled)
    model = registry.resolve({"model": cfg})["model"]
    assert model.attrs["multi_label"] is True
    assert model.has_ref("output_layer") and model.has_ref("tok2vec")


def test_architectures_inline_transformer_trains(tiny_bert_dir):
    """WordpieceTransformer.v1: the component owns its transformer."""
    fix_random_seed(0)
    nlp = spacy.blank("xx")
    trf_model = transformer_config(tiny_bert_dir)["model"]
    nlp.add_pipe(
        "mlbert_textcat",
        config={
            "model": {
                "@architectures": "spacy-mlbert.MultiLabelClassifier.v2",
                "tok2vec": {
                    "@architectures": "spacy-mlbert.WordpieceTransformer.v1",
                    "name": trf_model["name"],
                    "get_spans": trf_model["get_spans"],
                    "tokenizer_config": trf_model["tokenizer_config"],
                    "transformer_config": {},
                    "pooling": "mean",
                },
            }
        },
    )
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["mlbert_textcat"] for _ in range(15)]
    assert losses[-1] < losses[0]
    doc = nlp("这个产品很好")
    assert set(doc.cats) == {"positive", "negative", "useful", "slow"}


def test_architectures_initialize_consistently(tiny_xlmr_dir):
    outputs = []
    for _ in range(2):
        fix_random_seed(0)
        nlp = make_nlp(tiny_xlmr_dir)
        nlp.initialize(get_examples=lambda: make_examples(nlp))
        outputs.append(nlp.get_pipe("mlbert_textcat").model.get_ref("output_layer").get_param("W").copy())
    numpy.testing.assert_array_equal(outputs[0], outputs[1])


def test_architectures_classifier_v2_normalizes_the_document_vector(tiny_xlmr_dir):
    """v2 puts a layer norm between the pooled vector and the output layer:
    at initialisation (gain 1, bias 0) each row it passes on has mean 0 and
    variance 1 over its dimensions, whatever the encoder's scale."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir)  # the default head is v2
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    model = nlp.get_pipe("mlbert_textcat").model
    assert nlp.config["components"]["mlbert_textcat"]["model"]["@architectures"] == "spacy-mlbert.MultiLabelClassifier.v2"
    assert [layer.name for layer in model.layers][1:] == ["layernorm", "dropout", "linear"]
    docs = list(nlp.pipe(["Ce produit est incroyable.", "这个产品很好", "Slow delivery."], disable=["mlbert_textcat"]))
    pooled = model.get_ref("tok2vec").predict(docs)
    normed = model.layers[1].predict(pooled)
    numpy.testing.assert_allclose(normed.mean(axis=1), 0.0, atol=1e-5)
    numpy.testing.assert_allclose(normed.var(axis=1), 1.0, rtol=1e-2)
    assert not numpy.allclose(pooled.var(axis=1), 1.0, rtol=1e-2)
    v2_config = nlp.config["components"]["mlbert_textcat"]["model"]
    without = registry.resolve({"model": {**v2_config, "normalize": False}})["model"]
    assert [layer.name for layer in without.layers][1:] == ["dropout", "linear"]  # v1's model


def test_architectures_classifier_v2_grows_its_output_layer(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir)
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    textcat = nlp.get_pipe("mlbert_textcat")
    before = textcat.model.get_ref("output_layer").get_param("W").copy()
    textcat.add_label("brand_new")
    after = textcat.model.get_ref("output_layer").get_param("W")
    assert after.shape[0] == before.shape[0] + 1
    numpy.testing.assert_array_equal(after[: before.shape[0]], before)
    assert textcat.model.layers[-1] is textcat.model.get_ref("output_layer")
    assert textcat.model.layers[1].name == "layernorm"


def test_architectures_classifier_v1_still_trains_saves_and_loads(tiny_xlmr_dir):
    """Pipelines trained with the old head (no layer norm) keep working."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"model": V1_MODEL})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    model = nlp.get_pipe("mlbert_textcat").model
    assert [layer.name for layer in model.layers][1:] == ["dropout", "linear"]
    losses = [nlp.update(examples, sgd=optimizer)["mlbert_textcat"] for _ in range(10)]
    assert losses[-1] < losses[0]
    texts = ["这个产品很好", "Slow delivery."]
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        loaded = spacy.load(tmp_dir)
    assert loaded.config["components"]["mlbert_textcat"]["model"]["@architectures"] == "spacy-mlbert.MultiLabelClassifier.v1"
    assert [doc.cats for doc in loaded.pipe(texts)] == [doc.cats for doc in nlp.pipe(texts)]


def test_architectures_pooling_defaults_to_mean_like_the_factory(tiny_xlmr_dir):
    """A config that leaves out `pooling` gets the factory's (and README's) mean."""
    from spacy_mlbert.pipeline import DEFAULT_MODEL

    assert DEFAULT_MODEL["tok2vec"]["pooling"] == "mean"
    listener = registry.resolve({"m": {"@architectures": "spacy-mlbert.WordpieceListener.v1"}})["m"]
    assert listener.layers[-1].attrs["pooling"] == "mean"
    cfg = {
        "@architectures": "spacy-mlbert.WordpieceTransformer.v1",
        "name": str(tiny_xlmr_dir),
        "get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
        "tokenizer_config": {"use_fast": True},
        "transformer_config": {},
    }
    owned = registry.resolve({"m": cfg})["m"]
    assert owned.layers[-1].attrs["pooling"] == "mean"



@pytest.mark.parametrize("version,count_once", [("v1", False), ("v2", True)])
def test_architectures_v2_listeners_count_each_wordpiece_once(tiny_xlmr_dir, version, count_once):
    """v1 keeps its mean over every window's rows (saved pipelines load as
    they were); v2's counts each wordpiece once, also after replace_listeners."""
    from spacy_mlbert.layers.transformer import _replace_listener_cfg

    listener_cfg = {"@architectures": f"spacy-mlbert.WordpieceListener.{version}", "pooling": "mean"}
    listener = registry.resolve({"m": listener_cfg})["m"]
    assert listener.layers[-1].attrs["count_once"] is count_once
    transformer_cfg = {
        "@architectures": "spacy-mlbert.TransformerModel.v1",
        "name": str(tiny_xlmr_dir),
        "get_spans": {"@span_getters": "spacy-transformers.doc_spans.v1"},
        "tokenizer_config": {"use_fast": True},
        "transformer_config": {},
    }
    owned_cfg = _replace_listener_cfg(transformer_cfg, listener_cfg)
    assert owned_cfg["@architectures"] == f"spacy-mlbert.WordpieceTransformer.{version}"
    owned = registry.resolve({"m": owned_cfg})["m"]
    assert owned.layers[-1].attrs["count_once"] is count_once
