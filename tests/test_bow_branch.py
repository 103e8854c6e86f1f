"""MultiLabelClassifier.v3: the head's logits plus a bag-of-words model's."""
import numpy
import pytest
from spacy.util import fix_random_seed

from util import make_examples, make_nlp

BOW = {
    "@architectures": "spacy.TextCatBOW.v3",
    "exclusive_classes": False,
    "ngram_size": 1,
    "no_output_layer": True,
    "length": 4096,
}


def _v3(linear_model=BOW):
    model = {
        "@architectures": "spacy-mlbert.MultiLabelClassifier.v3",
        "dropout": 0.0,
        "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "mean"},
    }
    if linear_model is not None:
        model["linear_model"] = dict(linear_model)
    return {"model": model}


@pytest.fixture(scope="module")
def bow_nlp(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir, textcat_config=_v3())
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    losses = []
    for _ in range(30):
        losses.append(nlp.update(examples, sgd=optimizer)["mlbert_textcat"])
    return nlp, losses


def test_v3_learns(bow_nlp):
    nlp, losses = bow_nlp
    assert losses[-1] < 0.5 * losses[0]


def test_v3_output_is_sum_of_branches(bow_nlp):
    nlp, _ = bow_nlp
    textcat = nlp.get_pipe("mlbert_textcat")
    docs = [nlp.make_doc(t) for t in ("Es muy bueno.", "这个产品很好")]
    docs = list(nlp.get_pipe("transformer").pipe(docs))
    model = textcat.model
    total = model.predict(docs)
    head = model.get_ref("head").predict(docs)
    bow = model.get_ref("linear_model").predict(docs)
    numpy.testing.assert_allclose(total, head + bow, rtol=1e-5, atol=1e-6)
    # the bag of words learned something: its logits are not all zero
    assert numpy.abs(bow).max() > 1e-3


def test_v3_without_linear_model_is_v2(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir, textcat_config=_v3(linear_model=None))
    model = nlp.get_pipe("mlbert_textcat").model
    assert model.name.endswith("layernorm>>dropout>>linear")
    assert model.has_ref("output_layer") and not model.has_ref("linear_model")


def test_v3_round_trip(bow_nlp, tmp_path):
    import spacy

    nlp, _ = bow_nlp
    texts = ["This phone is great.", "هذا المنتج سيء"]
    before = [doc.cats for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "m")
    loaded = spacy.load(tmp_path / "m")
    after = [doc.cats for doc in loaded.pipe(texts)]
    for a, b in zip(before, after):
        assert a.keys() == b.keys()
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-6)


def test_v3_grows_both_branches(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir, textcat_config=_v3())
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    nlp.update(examples, sgd=optimizer)
    textcat = nlp.get_pipe("mlbert_textcat")
    n = len(textcat.labels)
    textcat.model.attrs["resize_output"](textcat.model, n + 1)
    docs = list(nlp.get_pipe("transformer").pipe([nlp.make_doc("Es muy bueno.")]))
    assert textcat.model.predict(docs).shape == (1, n + 1)
