"""The encoder input prefix (TransformerModel.v1 ``input_prefix``): the
tokenizer puts it after the opening special token, spaCy tokens never align
to it, and a saved pipeline keeps it."""
import numpy
import pytest
import spacy
from spacy.util import fix_random_seed, make_tempdir
from transformers import AutoTokenizer

from spacy_mlbert.layers.input_prefix import add_input_prefix, input_prefix_ids
from util import make_examples, make_nlp, transformer_config

PREFIX = "query: "
TEXT = "I love this, it is great"


@pytest.fixture(params=["tiny_xlmr_dir", "tiny_bert_dir"])
def tokenizer(request):
    return AutoTokenizer.from_pretrained(str(request.getfixturevalue(request.param)), use_fast=True)


def test_prefix_goes_between_the_opening_special_token_and_the_text(tokenizer):
    text = "hello world"
    plain = tokenizer(text)["input_ids"]
    prefix_ids = tokenizer(PREFIX, add_special_tokens=False)["input_ids"]
    assert prefix_ids and input_prefix_ids(tokenizer) == []
    n_special = tokenizer.num_special_tokens_to_add()

    add_input_prefix(tokenizer, PREFIX)

    encoding = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert encoding["input_ids"] == plain[:1] + prefix_ids + plain[1:]
    k = len(prefix_ids)
    # no characters of the text: spaCy tokens cannot align to the prefix
    assert encoding["offset_mapping"][1 : 1 + k] == [(0, 0)] * k
    assert encoding["special_tokens_mask"][1 : 1 + k] == [1] * k
    # windows of wordpieces leave room for it
    assert tokenizer.num_special_tokens_to_add() == n_special + k
    assert input_prefix_ids(tokenizer) == prefix_ids


def test_prefix_is_added_once_and_a_different_one_is_refused(tokenizer):
    add_input_prefix(tokenizer, PREFIX)
    once = tokenizer("x")["input_ids"]
    add_input_prefix(tokenizer, PREFIX)  # initialize again: unchanged
    assert tokenizer("x")["input_ids"] == once
    with pytest.raises(ValueError, match=r"\[E153\].*'passage: '"):
        add_input_prefix(tokenizer, "passage: ")


def test_empty_prefix_changes_nothing(tokenizer):
    before = tokenizer("hello")["input_ids"]
    add_input_prefix(tokenizer, "")
    assert tokenizer("hello")["input_ids"] == before


def test_prefix_needs_a_fast_tokenizer():
    with pytest.raises(ValueError, match=r"\[E152\]"):
        add_input_prefix(object(), PREFIX)


def _prefixed_nlp(encoder_dir):
    nlp = make_nlp(encoder_dir)
    config = nlp.config.copy()
    config["components"]["transformer"]["model"]["input_prefix"] = PREFIX
    return spacy.util.load_model_from_config(config, auto_fill=True)


def test_pipeline_with_prefix_trains_saves_and_loads(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = _prefixed_nlp(tiny_xlmr_dir)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    for _ in range(2):
        nlp.update(examples, sgd=optimizer)
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    prefix_ids = tokenizer(PREFIX, add_special_tokens=False)["input_ids"]
    text = TEXT
    doc = nlp(text)
    trf = doc._.trf_data
    k = len(prefix_ids)
    assert list(trf.wordpieces.input_ids[0][1 : 1 + k]) == prefix_ids
    aligned = set(int(i) for i in trf.align.data.ravel())
    assert aligned and not aligned & set(range(1, 1 + k))
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        loaded = spacy.load(tmp)
    again = loaded(text)
    assert list(again._.trf_data.wordpieces.input_ids[0]) == list(trf.wordpieces.input_ids[0])
    for label, score in doc.cats.items():
        assert again.cats[label] == pytest.approx(score, abs=1e-6)
    from_bytes = spacy.blank("xx").from_config(nlp.config).from_bytes(nlp.to_bytes())
    assert list(from_bytes(text)._.trf_data.wordpieces.input_ids[0]) == list(trf.wordpieces.input_ids[0])
    # and it changes what the model sees
    plain = make_nlp(tiny_xlmr_dir)
    plain.initialize(get_examples=lambda: examples)
    assert len(plain(text)._.trf_data.wordpieces.input_ids[0]) == len(trf.wordpieces.input_ids[0]) - k
    assert numpy.isfinite(list(doc.cats.values())).all()


def _replaced(nlp, component: str):
    """Initialize ``nlp``, give ``component`` its own copy of the transformer;
    RETURNS the cats of TEXT before, and that copy."""
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    shared = nlp(TEXT).cats
    nlp.replace_listeners("transformer", component, ["model.tok2vec"])
    nlp.remove_pipe("transformer")
    own = next(node for node in nlp.get_pipe(component).model.walk() if node.name == "transformer")
    return shared, own


def test_replaced_listener_keeps_the_prefix(tiny_xlmr_dir):
    fix_random_seed(0)
    nlp = _prefixed_nlp(tiny_xlmr_dir)
    shared, own = _replaced(nlp, "mlbert_textcat")
    assert nlp.config["components"]["mlbert_textcat"]["model"]["tok2vec"]["input_prefix"] == PREFIX
    assert input_prefix_ids(own.tokenizer) == own.tokenizer(PREFIX, add_special_tokens=False)["input_ids"]
    assert nlp(TEXT).cats == pytest.approx(shared, abs=1e-6)
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        assert spacy.load(tmp)(TEXT).cats == pytest.approx(shared, abs=1e-6)


def test_spacy_transformers_listener_replaced_keeps_the_prefix_in_its_tokenizer(tiny_xlmr_dir):
    """Stock textcat over the prefixed transformer: spacy-transformers'
    Tok2VecTransformer has no input_prefix, the copied tokenizer puts it."""
    fix_random_seed(0)
    config = transformer_config(tiny_xlmr_dir)
    config["model"]["input_prefix"] = PREFIX
    nlp = spacy.blank("xx")
    nlp.add_pipe("transformer", config=config)
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"}
    reduce = {"use_reduce_mean": True, "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False}
    nlp.add_pipe("textcat_multilabel", config={"model": {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": False, **reduce, "tok2vec": listener}})
    shared, own = _replaced(nlp, "textcat_multilabel")
    assert "input_prefix" not in nlp.config["components"]["textcat_multilabel"]["model"]["tok2vec"]
    assert input_prefix_ids(own.tokenizer)
    with make_tempdir() as tmp:
        nlp.to_disk(tmp)
        loaded = spacy.load(tmp)
    own = next(node for node in loaded.get_pipe("textcat_multilabel").model.walk() if node.name == "transformer")
    assert input_prefix_ids(own.tokenizer)
    assert loaded(TEXT).cats == pytest.approx(shared, abs=1e-6)
