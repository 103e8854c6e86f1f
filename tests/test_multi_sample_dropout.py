"""Multi-sample dropout (MultiLabelClassifier.v2/v3 ``dropout_samples``)."""
import numpy
import pytest
import spacy
from spacy.util import fix_random_seed, make_tempdir

from spacy_mlbert.layers import MultiSampleDropout
from util import make_examples, make_nlp


def test_identity_when_predicting():
    layer = MultiSampleDropout(0.5, 4)
    X = numpy.ones((3, 5), dtype="f")
    Y, backprop = layer(X, is_train=False)
    assert Y is X and backprop(X) is X


def test_masks_are_averaged_with_the_same_expectation_and_less_noise():
    fix_random_seed(0)
    X = numpy.ones((400, 50), dtype="f")
    one, _ = MultiSampleDropout(0.5, 1)(X, is_train=True)
    eight, backprop = MultiSampleDropout(0.5, 8)(X, is_train=True)
    # each mask keeps with 1/(1 - rate): means of 8 are multiples of 2/8
    assert set(numpy.unique(one)) <= {0.0, 2.0}
    assert numpy.allclose((eight * 4) % 1, 0) and len(numpy.unique(eight)) > 2
    assert abs(one.mean() - 1) < 0.05 and abs(eight.mean() - 1) < 0.05
    assert eight.var() < one.var() / 4
    # the gradient goes through the same averaged mask
    numpy.testing.assert_array_equal(backprop(numpy.ones_like(X)), eight)


@pytest.mark.parametrize("rate,samples", [(1.0, 2), (-0.1, 2), (0.1, 0), (0.1, 1.5)])
def test_coded_error(rate, samples):
    with pytest.raises(ValueError, match=r"\[E156\]"):
        MultiSampleDropout(rate, samples)


def test_classifier_with_dropout_samples_trains_saves_and_loads(tiny_xlmr_dir):
    fix_random_seed(0)
    model = {"@architectures": "spacy-mlbert.MultiLabelClassifier.v2", "dropout_samples": 4}
    nlp = make_nlp(tiny_xlmr_dir, textcat_config={"model": {**model, "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1"}}})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer, drop=0.2)["mlbert_textcat"] for _ in range(6)]
    assert losses[-1] < losses[0]
    node = next(n for n in nlp.get_pipe("mlbert_textcat").model.walk() if n.name == "multi_sample_dropout")
    assert node.attrs["dropout_rate"] == 0.2  # spaCy's training dropout reaches it
    text = "I love this"
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        loaded = spacy.load(tmp)
    assert loaded(text).cats == pytest.approx(nlp(text).cats, abs=1e-6)
