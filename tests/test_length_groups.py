"""The encoder's length groups (layers/length_groups.py): windows run sorted
by length in groups of at most max_batch_wordpieces, outputs and gradients
back in the batch's order, the same as running the batch whole."""
import numpy
import pytest
import spacy
import torch
from spacy.util import fix_random_seed
from thinc.api import Config

from spacy_mlbert.layers.length_groups import length_groups

from util import make_examples, make_nlp, transformer_config

# short and long texts mixed, so that groups differ in padded length
TEXTS = [
    "ok",
    "This is a much longer text that goes on and on about the quality of the product and its delivery " * 2,
    "短い",
    "",
    "Medium length text about the service.",
    "Очень длинный текст о доставке, качестве и цене, который продолжается дальше и дальше " * 3,
    "fine",
]


@pytest.mark.parametrize(
    "lengths,budget",
    [([3, 50, 2, 1, 10, 120, 4], 64), ([5] * 9, 20), ([7, 0, 300], 100), ([1], 8)],
)
def test_groups_cover_every_row_once_within_the_budget(lengths, budget):
    groups = length_groups(lengths, budget)
    rows = sorted(int(row) for group in groups for row in group)
    assert rows == list(range(len(lengths)))
    flat = [lengths[row] for group in groups for row in group]
    assert flat == sorted(lengths)  # shortest first
    for group in groups:
        longest = max(max(lengths[row] for row in group), 1)
        assert len(group) == 1 or len(group) * longest <= budget


def _pipeline(encoder_dir, max_batch_wordpieces):
    fix_random_seed(0)
    nlp = make_nlp(encoder_dir, pooling="mean")
    config = transformer_config(encoder_dir)
    config["model"]["max_batch_wordpieces"] = max_batch_wordpieces
    nlp.remove_pipe("transformer")
    nlp.add_pipe("transformer", config=config, first=True)
    examples = make_examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    return nlp


@pytest.fixture(scope="module")
def whole_and_grouped(tiny_xlmr_dir):
    whole = _pipeline(tiny_xlmr_dir, 0)
    grouped = _pipeline(tiny_xlmr_dir, 48)
    grouped.from_bytes(whole.to_bytes())  # same weights
    assert grouped.get_pipe("transformer").model.layers[0]._func.args[1] == 48
    return whole, grouped


def _cats(nlp, texts, batch_size=16):
    return [doc.cats for doc in nlp.pipe(texts, batch_size=batch_size)]


def test_grouped_batches_give_the_same_cats_in_input_order(whole_and_grouped):
    whole, grouped = whole_and_grouped
    docs = list(grouped.pipe(TEXTS, batch_size=16))
    assert [doc.text for doc in docs] == TEXTS
    for expected, got in zip(_cats(whole, TEXTS), [doc.cats for doc in docs]):
        assert expected.keys() == got.keys()
        numpy.testing.assert_allclose([got[k] for k in expected], [expected[k] for k in expected], atol=1e-5)


def test_grouping_really_splits_the_batch(whole_and_grouped):
    _, grouped = whole_and_grouped
    encoder_layer = grouped.get_pipe("transformer").model.layers[0]
    calls = []
    original = encoder_layer._func.args[0]

    def counting(layer, wordpieces, is_train):
        calls.append(wordpieces.input_ids.shape)
        return original(layer, wordpieces, is_train)

    forward = encoder_layer._func
    encoder_layer._func = type(forward)(forward.func, counting, *forward.args[1:])
    try:
        list(grouped.pipe(TEXTS, batch_size=16))
    finally:
        encoder_layer._func = forward
    assert len(calls) > 1
    assert all(rows == 1 or rows * length <= 48 for rows, length in calls)
    assert min(length for _, length in calls) < max(length for _, length in calls)


def test_gradients_match_the_whole_batch(whole_and_grouped):
    whole, grouped = whole_and_grouped
    grads = []
    for nlp in (whole, grouped):
        shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
        for param in shim._model.parameters():
            param.grad = None
        for module in shim._model.modules():  # dropout draws differ with the groups' shapes
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if hasattr(module, "dropout_prob"):  # attention dropout (sdpa)
                module.dropout_prob = 0.0
        textcat = nlp.get_pipe("mlbert_textcat")
        examples = make_examples(nlp, [(text, {"useful": 1.0, "slow": 0.0}) for text in TEXTS if text])
        nlp.get_pipe("transformer").update(examples, drop=0.0)
        textcat.update(examples, drop=0.0)
        grads.append({name: param.grad.clone() for name, param in shim._model.named_parameters() if param.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4)


def test_negative_budget_is_a_coded_error(tiny_xlmr_dir):
    config = transformer_config(tiny_xlmr_dir)
    config["model"]["max_batch_wordpieces"] = -1
    nlp = spacy.blank("xx")
    with pytest.raises(ValueError, match=r"\[E220\]"):
        nlp.add_pipe("transformer", config=config)


def test_the_setting_is_in_the_config_and_survives_a_round_trip(whole_and_grouped, tmp_path):
    _, grouped = whole_and_grouped
    grouped.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.config["components"]["transformer"]["model"]["max_batch_wordpieces"] == 48
    assert loaded.get_pipe("transformer").model.layers[0]._func.args[1] == 48
    for expected, got in zip(_cats(grouped, TEXTS), _cats(loaded, TEXTS)):
        assert expected == got
