"""Long and CJK documents: the script-aware tokenizer, windows measured in
wordpieces, and the warning when a window still has to be cut."""
import math
import pickle
import random
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy
import pytest
import spacy
import torch
from spacy.util import fix_random_seed, load_config, load_model_from_config, make_tempdir
from transformers import AutoTokenizer

from spacy_mlbert.span_getters import WordpieceStridedSpans, configure_wordpiece_strided_spans
from spacy_mlbert.tokenizer import ScriptAwareTokenizer, split_no_space_text
from util import SCRIPT_AWARE_TOKENIZER, TWO_WINDOWS_COUNTED, WORDPIECE_SPANS, make_examples, make_nlp, two_overlapping_windows

CONFIGS = Path(__file__).parent.parent / "configs"
ZH_CHARS = "这个产品很好非常实用我喜欢它快递太慢了等两星期才到失望的价格东京塔漂亮"
EN_WORDS = (
    "the hotel was clean staff friendly and breakfast good application slow but "
    "useful for daily work great value would buy again phone really delivery"
).split()


def chinese_text(n_chars: int = 5000, seed: int = 0) -> str:
    """Chinese without a single space, with a full-width comma or stop now and then."""
    rng = random.Random(seed)
    chars = []
    while len(chars) < n_chars:
        chars.append(rng.choice(ZH_CHARS))
        if rng.random() < 0.06:
            chars.append(rng.choice("，。"))
    return "".join(chars[:n_chars])


def english_text(n_words: int = 3000, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = [rng.choice(EN_WORDS) + ("." if rng.random() < 0.08 else "") for _ in range(n_words)]
    return " ".join(words)


def long_url(n_chars: int = 2000) -> str:
    """One spaCy token; "/" makes BERT's pre-tokenizer cut it into short words
    (a 2,000-character word would be a single [UNK])."""
    return "https://example.com/" + "ab12cd/hi" * ((n_chars - 20) // 9)


def record_w010(func, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args)
    return result, [str(w.message) for w in caught if "[W010]" in str(w.message)]


def assert_every_wordpiece_takes_part(doc, model):
    """Check through doc._.trf_data that no window was cut and that the windows
    together cover every wordpiece of the whole document's tokenization.

    RETURNS (int): The number of windows.
    """
    trf_data = doc._.trf_data
    tokenizer = model.tokenizer
    # the getter is deterministic: these are the windows the transformer encoded
    windows = model.attrs["get_spans"]([doc])[0]
    max_length = tokenizer.model_max_length
    specials = set(tokenizer.all_special_ids)
    input_ids = trf_data.wordpieces.input_ids
    mask = trf_data.wordpieces.attention_mask
    n_windows = input_ids.shape[0]
    assert input_ids.shape[1] <= max_length
    # every window ends with its closing special token: nothing was dropped
    lengths = mask.sum(axis=1).astype(int)
    for row in range(n_windows):
        assert int(input_ids[row, lengths[row] - 1]) in specials
    # the windows' wordpieces are exactly the tokenization of their texts
    assert len(windows) == n_windows
    text = doc.text  # (doc.text joins the tokens at every call)
    covered = numpy.zeros((len(text),), dtype=bool)
    for row, span in enumerate(windows):
        expected = tokenizer(span.text, add_special_tokens=True, verbose=False)["input_ids"]
        assert input_ids[row, : lengths[row]].tolist() == expected
        covered[span.start_char : span.end_char] = True
    full = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    for start, end in full["offset_mapping"]:
        chars = [i for i in range(start, end) if not text[i].isspace()]
        assert covered[chars].all(), f"wordpiece {text[start:end]!r} at {start} is in no window"
    # and every spaCy token with a wordpiece is aligned to one
    aligned = trf_data.align.lengths
    for token in doc:
        if not token.is_space:
            assert aligned[token.i] > 0, token.text
    return n_windows


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny encoders' matrices are far too small for several threads; on
    shared CI cores they only contend (10,000 short docs: 15 s on one thread,
    75 s on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def long_nlp(request, tiny_bert_dir, tiny_xlmr_dir):
    """transformer + mlbert_textcat with the shipped tokenizer and span getter."""
    encoder_dir = tiny_bert_dir if request.param == "bert" else tiny_xlmr_dir
    fix_random_seed(0)
    nlp = make_nlp(encoder_dir, pooling="mean", get_spans=WORDPIECE_SPANS, tokenizer=SCRIPT_AWARE_TOKENIZER)
    examples = make_examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    return nlp


def _model(nlp):
    return nlp.get_pipe("transformer").model


def _tokenizer(nlp):
    return _model(nlp).tokenizer


# --- the tokenizer ----------------------------------------------------------


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("这个产品很好，非常实用。", list("这个产品很好，非常实用。")),
        ("iPhone的价格 ok", ["iPhone", "的", "价", "格", "ok"]),
        ("東京タワー、綺麗", ["東", "京", "タ", "ワ", "ー", "、", "綺", "麗"]),
        # Thai vowel and tone marks stay on their consonant
        ("ที่ดี", ["ที่", "ดี"]),
        ("Mixed 中文 text عربي", ["Mixed", "中", "文", "text", "عربي"]),
        ("한국어 문장입니다", ["한국어", "문장입니다"]),
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("", []),
        ("  ", ["  "]),
        ("😀😀", ["😀", "😀"]),
    ],
)
def test_tokenizer_splits_scripts_without_spaces(text, tokens):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": SCRIPT_AWARE_TOKENIZER}}})
    assert isinstance(nlp.tokenizer, ScriptAwareTokenizer)
    doc = nlp(text)
    assert [token.text for token in doc] == tokens
    assert doc.text == text
    assert [d.text for d in nlp.tokenizer.pipe([text, text])] == [text, text]


def test_tokenizer_leaves_other_texts_as_spacy_does():
    default = spacy.blank("xx")
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": SCRIPT_AWARE_TOKENIZER}}})
    for text in ["Don't stop :) e-mail me at a@b.com, ok?", "Ça va  très bien\n\nmerci", long_url(200)]:
        expected = [(t.text, t.whitespace_, t.norm_) for t in default(text)]
        assert [(t.text, t.whitespace_, t.norm_) for t in nlp(text)] == expected
    # special cases and settings are the wrapped tokenizer's; their NORM stays
    # when a text is re-tokenized for its Chinese
    nlp.tokenizer.add_special_case("gimme", [{"ORTH": "gim", "NORM": "give"}, {"ORTH": "me"}])
    doc = nlp("gimme 中文")
    assert [(t.text, t.norm_) for t in doc] == [("gim", "give"), ("me", "me"), ("中", "中"), ("文", "文")]


def test_tokenizer_split_text_keeps_every_character():
    rng = random.Random(1)
    alphabet = "ab 中文ที่ดี😀,.-ภาษา\u0301\u200d"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        assert "".join(split_no_space_text(text)) == text


def test_tokenizer_serializes_and_pickles(tiny_xlmr_dir):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": SCRIPT_AWARE_TOKENIZER}}})
    nlp.tokenizer.add_special_case("xyzzy", [{"ORTH": "xy"}, {"ORTH": "zzy"}])
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        loaded = spacy.load(tmp_dir)
    assert isinstance(loaded.tokenizer, ScriptAwareTokenizer)
    assert [t.text for t in loaded("xyzzy 你好")] == ["xy", "zzy", "你", "好"]
    again = spacy.blank("xx", config=nlp.config).from_bytes(nlp.to_bytes())
    assert [t.text for t in again("xyzzy 你好")] == ["xy", "zzy", "你", "好"]
    unpickled = pickle.loads(pickle.dumps(nlp.tokenizer))
    assert [t.text for t in unpickled("xyzzy 你好")] == ["xy", "zzy", "你", "好"]


# --- the span getter --------------------------------------------------------


@pytest.mark.parametrize("window,stride", [(0, 0), (100, 0), (100, 101), (True, 1), (100.0, 50), (-5, 1)])
def test_span_getter_rejects_bad_settings(window, stride):
    with pytest.raises(ValueError, match="E070"):
        configure_wordpiece_strided_spans(window=window, stride=stride)


def test_span_getter_needs_a_bound_fast_tokenizer(tiny_bert_dir):
    nlp = spacy.blank("xx")
    docs = [nlp("some text")]
    getter = WordpieceStridedSpans(510, 384)
    with pytest.raises(ValueError, match="E071"):
        getter(docs)
    getter.bind_model(SimpleNamespace(tokenizer=None))
    with pytest.raises(ValueError, match="E072"):
        getter(docs)
    slow = AutoTokenizer.from_pretrained(str(tiny_bert_dir), use_fast=False)
    getter.bind_model(SimpleNamespace(tokenizer=slow))
    with pytest.raises(ValueError, match="E073.*BertTokenizer"):
        getter(docs)
    getter.bind_model(SimpleNamespace(tokenizer=AutoTokenizer.from_pretrained(str(tiny_bert_dir))))
    assert [[span.text for span in spans] for spans in getter(docs + [nlp("")])] == [["some text"], []]


def test_span_getter_budget_is_capped_to_the_encoder(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    assert tokenizer.model_max_length == 128
    assert WordpieceStridedSpans(510, 384).budget(tokenizer) == 126
    assert WordpieceStridedSpans(50, 20).budget(tokenizer) == 50


@pytest.mark.parametrize("window,stride", [(126, 96), (40, 40), (40, 10), (7, 3)])
def test_span_getter_windows_fit_and_overlap(tiny_xlmr_dir, window, stride):
    """Every window fits its budget (its own tokenization), windows tile the
    document without gaps, and each starts about `stride` wordpieces on."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": SCRIPT_AWARE_TOKENIZER}}})
    getter = WordpieceStridedSpans(window, stride)
    getter.bind_model(SimpleNamespace(tokenizer=tokenizer))
    texts = [chinese_text(1200, seed=3), english_text(400, seed=3), "短い", "Mixed 中文 text 😀 " * 40]
    docs = [nlp(text) for text in texts]
    for doc, windows in zip(docs, getter(docs)):
        assert windows[0].start == 0 and windows[-1].end == len(doc)
        for before, after in zip(windows, windows[1:]):
            assert before.start < after.start <= before.end
        for span in windows:
            n = len(tokenizer(span.text, add_special_tokens=False)["input_ids"])
            assert n <= window or len(span) == 1


def test_span_getter_work_is_linear_in_document_length(tiny_xlmr_dir):
    """The characters the span getter tokenizes grow with the text, not faster."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    tokenized = []

    class CountingTokenizer:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, texts, **kwargs):
            batch = texts if isinstance(texts, list) else [texts]
            tokenized.append(sum(len(text) for text in batch))
            return tokenizer(texts, **kwargs)

    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": SCRIPT_AWARE_TOKENIZER}}})
    getter = WordpieceStridedSpans(126, 96)
    getter.bind_model(SimpleNamespace(tokenizer=CountingTokenizer()))
    ratios = []
    for n_chars in (2000, 20000):
        text = chinese_text(n_chars, seed=5)
        tokenized.clear()
        windows = getter([nlp(text)])[0]
        ratios.append(sum(tokenized) / len(text))
        assert len(windows) <= len(text) / 96 * 1.5 + 2
    # whole text once, every window once (126/96 of the text), a few re-checks
    assert max(ratios) < 3.0
    assert ratios[1] < ratios[0] * 1.2


# --- whole pipeline ---------------------------------------------------------


@pytest.mark.parametrize("make_text", [chinese_text, english_text], ids=["zh-5000-chars", "en-3000-words"])
def test_long_document_every_wordpiece_takes_part(long_nlp, make_text):
    text = make_text()
    tokenizer = _tokenizer(long_nlp)
    doc, cut_warnings = record_w010(long_nlp, text)
    assert cut_warnings == []
    n_windows = assert_every_wordpiece_takes_part(doc, _model(long_nlp))
    total = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    # windows of up to 126 wordpieces, a new one every ~96
    assert math.ceil(total / 126) <= n_windows <= total / 96 * 1.25 + 2
    assert set(doc.cats) == {"positive", "negative", "useful", "slow"}
    # mean pooling takes every window: the vector is the mean over all of them
    hidden = doc._.trf_data.model_output.last_hidden_state
    assert hidden.shape[0] == n_windows


def test_spacy_token_windows_of_cjk_are_cut_and_counted(tiny_bert_dir):
    """The old setup (xx tokenizer, windows in spaCy tokens) loses most of a
    Chinese text: one spaCy token, one window. It is no longer silent."""
    nlp = make_nlp(tiny_bert_dir)
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    text = chinese_text(1000)
    tokenizer = _tokenizer(nlp)
    doc, cut_warnings = record_w010(nlp, text)
    total = len(tokenizer(doc[:].text, add_special_tokens=True)["input_ids"])
    assert len(cut_warnings) == 1
    message = cut_warnings[0]
    assert "1 document(s)" in message and "limit of 128" in message
    assert f"{total - 128} wordpiece(s) were cut" in message


def test_long_token_is_its_own_window_and_counted(long_nlp):
    """A spaCy token longer than a window (a 2,000-character URL) cannot be
    divided: it is cut, once per batch in a warning with the counts."""
    tokenizer = _tokenizer(long_nlp)
    url = long_url(2000)
    texts = [f"Look at {url} it is great.", "短い文です。", f"{url} and {url}", ""]
    url_length = len(tokenizer(url, add_special_tokens=True, verbose=False)["input_ids"])
    assert url_length > 128
    docs, cut_warnings = record_w010(lambda: list(long_nlp.pipe(texts, batch_size=8)))
    assert len(cut_warnings) == 1
    assert cut_warnings[0].startswith("[W010] 2 document(s) in this batch had 3 window(s)")
    assert f"{3 * (url_length - 128)} wordpiece(s) were cut" in cut_warnings[0]
    windows = _model(long_nlp).attrs["get_spans"](docs)
    assert [span.text for span in windows[0]] == ["Look at", url, "it is great."]
    assert [span.text for span in windows[2]] == [url, "and", url]
    assert windows[3] == []
    for doc in docs:
        assert all(0.0 <= p <= 1.0 for p in doc.cats.values())
    # batch by batch: each batch with a cut warns once
    _, cut_warnings = record_w010(lambda: list(long_nlp.pipe(texts, batch_size=1)))
    assert len(cut_warnings) == 2


def test_long_documents_after_save_and_load_without_encoder_folder(tiny_xlmr_dir):
    """The span getter reads the tokenizer saved inside the pipeline."""
    with make_tempdir() as tmp_dir:
        encoder = Path(tmp_dir) / "encoder-copy"
        shutil.copytree(tiny_xlmr_dir, encoder)
        fix_random_seed(0)
        nlp = make_nlp(encoder, pooling="mean", get_spans=WORDPIECE_SPANS, tokenizer=SCRIPT_AWARE_TOKENIZER)
        nlp.initialize(get_examples=lambda: make_examples(nlp))
        text = chinese_text(3000, seed=2)
        doc = nlp(text)
        nlp.to_disk(Path(tmp_dir) / "pipeline")
        shutil.rmtree(encoder)
        loaded = spacy.load(Path(tmp_dir) / "pipeline")
        assert isinstance(loaded.tokenizer, ScriptAwareTokenizer)
        doc2, cut_warnings = record_w010(loaded, text)
    assert cut_warnings == []
    assert doc2._.trf_data.wordpieces.input_ids.tolist() == doc._.trf_data.wordpieces.input_ids.tolist()
    assert doc2.cats == pytest.approx(doc.cats, abs=1e-6)
    assert_every_wordpiece_takes_part(doc2, _model(loaded))


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.cfg")))
def test_configs_use_script_aware_tokenizer_and_wordpiece_windows(name, tiny_xlmr_dir):
    config = load_config(CONFIGS / name, overrides={"paths.encoder": str(tiny_xlmr_dir)})
    assert config["nlp"]["tokenizer"] == {"@tokenizers": SCRIPT_AWARE_TOKENIZER}
    get_spans = config["components"]["transformer"]["model"]["get_spans"]
    assert get_spans["@span_getters"] == "spacy-mlbert.wordpiece_strided_spans.v1"
    nlp = load_model_from_config(config, auto_fill=True)
    nlp.get_pipe("transformer").initialize(lambda: [], nlp=nlp)
    model = nlp.get_pipe("transformer").model
    assert isinstance(nlp.tokenizer, ScriptAwareTokenizer)
    assert isinstance(model.attrs["get_spans"], WordpieceStridedSpans)
    doc = nlp.make_doc(chinese_text(600))
    windows = model.attrs["get_spans"]([doc])[0]
    assert len(windows) > 1 and windows[-1].end == len(doc)


# --- mean pooling over overlapping windows --------------------------------


def _pooling(version: str):
    """The pooling layer of the mean-pooling listener of that version."""
    listener = spacy.registry.resolve({"m": {"@architectures": f"spacy-mlbert.WordpieceListener.{version}"}})["m"]
    return listener.layers[-1]


def test_mean_pooling_counts_each_wordpiece_of_overlapping_windows_once():
    trf_data = two_overlapping_windows()
    hidden = trf_data.model_output.last_hidden_state
    counted = TWO_WINDOWS_COUNTED
    expected = numpy.mean([hidden[w, j] for w, j in counted], axis=0)
    pooling = _pooling("v2")
    Y, backprop = pooling([trf_data], is_train=True)
    numpy.testing.assert_allclose(Y[0], expected, rtol=1e-6)
    # v1 counts all 12 rows: the overlap and the special tokens twice
    numpy.testing.assert_allclose(_pooling("v1").predict([trf_data])[0], hidden.reshape((12, -1)).mean(axis=0), rtol=1e-6)
    # the gradient reaches the counted rows only, each with 1/8 of dY
    dY = numpy.array([[1.0, -2.0, 0.5]], dtype="f")
    d_hidden = backprop(dY)[0].model_output.last_hidden_state
    expected_grad = numpy.zeros_like(hidden)
    for w, j in counted:
        expected_grad[w, j] = dY[0] / len(counted)
    numpy.testing.assert_allclose(d_hidden, expected_grad, rtol=1e-6)
    # and it is the gradient of Y: a finite difference at a counted and an uncounted row
    for w, j in [(0, 3), (1, 1)]:
        bumped = two_overlapping_windows()
        bumped.model_output.last_hidden_state[w, j, 1] += 1e-2
        change = float((pooling.predict([bumped])[0] - Y[0]) @ dY[0]) / 1e-2
        assert change == pytest.approx(float(d_hidden[w, j, 1]), abs=1e-3)


def test_mean_pooling_v2_of_real_windows(long_nlp):
    """A long document through the shipped windows: each spaCy token's
    wordpieces are read in one window, the special tokens once, and the
    pooled vector is the numpy mean of those rows of the transformer output."""
    from spacy_mlbert.layers.wordpiece_pooling import counted_rows

    tokenizer = _tokenizer(long_nlp)
    doc = long_nlp(english_text(600))
    trf_data = doc._.trf_data
    hidden = trf_data.model_output.last_hidden_state
    n_windows, length = hidden.shape[:2]
    assert n_windows >= 4
    counted = counted_rows(trf_data)
    numpy.testing.assert_allclose(_pooling("v2").predict([trf_data])[0], hidden[counted].mean(axis=0), rtol=1e-5, atol=1e-6)
    # a wordpiece belongs to the last token it is aligned with; every token's
    # wordpieces are read in exactly one window, all of them there
    owner = {}
    for i in range(len(doc)):
        for row in trf_data.align[i].dataXd.ravel():
            owner[int(row)] = i
    for i in set(owner.values()):
        rows = [row for row, token in owner.items() if token == i]
        windows = {row // length for row in rows if counted.ravel()[row]}
        assert len(windows) == 1
        assert all(counted.ravel()[row] for row in rows if row // length in windows)
    ids = trf_data.wordpieces.input_ids[:, :length]
    opening, closing = ids[0, 0], ids[-1, int(trf_data.wordpieces.attention_mask[-1].sum()) - 1]
    assert (ids[counted] == opening).sum() == 1 and (ids[counted] == closing).sum() == 1
    # about the document's own wordpieces, plus its two special tokens
    total = len(tokenizer(doc.text, add_special_tokens=False, verbose=False)["input_ids"])
    assert abs(int(counted.sum()) - (total + 2)) <= n_windows
    assert counted.sum() < trf_data.wordpieces.attention_mask.sum() - 50


def test_mean_pooling_v2_of_one_window_is_v1s(long_nlp):
    doc = long_nlp("Excelente producto, lo recomiendo. 快递太慢了，很失望。")
    assert doc._.trf_data.model_output.last_hidden_state.shape[0] == 1
    numpy.testing.assert_array_equal(_pooling("v2").predict([doc._.trf_data]), _pooling("v1").predict([doc._.trf_data]))


def test_mean_pooling_v2_trains_saves_and_loads(tiny_xlmr_dir):
    """A pipeline whose classifier listens through WordpieceListener.v2
    learns, and predicts a long document the same after spacy.load."""
    fix_random_seed(0)
    model = {"tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v2", "pooling": "mean"}}
    nlp = make_nlp(tiny_xlmr_dir, get_spans=WORDPIECE_SPANS, tokenizer=SCRIPT_AWARE_TOKENIZER, textcat_config={"model": model})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer, losses={})["mlbert_textcat"] for _ in range(5)]
    assert losses[-1] < losses[0]
    doc = nlp(english_text(600, seed=3))
    assert doc._.trf_data.model_output.last_hidden_state.shape[0] >= 4
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        loaded = spacy.load(tmp_dir)
    tok2vec = loaded.config["components"]["mlbert_textcat"]["model"]["tok2vec"]
    assert tok2vec["@architectures"] == "spacy-mlbert.WordpieceListener.v2"
    assert loaded(doc.text).cats == pytest.approx(doc.cats, abs=1e-6)
