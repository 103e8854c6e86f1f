"""Shared test data and helpers: tiny multilingual examples and tiny encoders."""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.training import Example

# A few multilingual multi-label examples, Chinese and Arabic included.
TRAIN_DATA: List[Tuple[str, Dict[str, float]]] = [
    ("This phone is great and really useful.", {"positive": 1.0, "negative": 0.0, "useful": 1.0, "slow": 0.0}),
    ("Terrible service, and the delivery was slow.", {"positive": 0.0, "negative": 1.0, "useful": 0.0, "slow": 1.0}),
    ("Es muy bueno y lo recomiendo.", {"positive": 1.0, "negative": 0.0, "useful": 0.0, "slow": 0.0}),
    ("Le livreur était très lent, quelle déception.", {"positive": 0.0, "negative": 1.0, "useful": 0.0, "slow": 1.0}),
    ("这个产品很好，非常实用。", {"positive": 1.0, "negative": 0.0, "useful": 1.0, "slow": 0.0}),
    ("هذا المنتج سيء والتوصيل بطيء جدا", {"positive": 0.0, "negative": 1.0, "useful": 0.0, "slow": 1.0}),
]

# Text to train the tiny tokenizers on: the examples plus more of each script.
TOKENIZER_TEXTS: List[str] = [text for text, _ in TRAIN_DATA] + [
    "The hotel was clean, the staff friendly and the breakfast good.",
    "La aplicación es lenta pero útil para el trabajo diario.",
    "Das Buch ist spannend, ich kann es nur empfehlen.",
    "Очень удобный и быстрый сервис, рекомендую.",
    "यह फ़ोन बहुत अच्छा है लेकिन डिलीवरी धीमी थी।",
    "快递太慢了，等了两个星期才到，很失望。",
    "الفندق جميل والخدمة ممتازة وأنصح به",
    "ምርቱ በጣም ጥሩ ነው",
    "Great value 👍 would buy again!",
]


def make_examples(nlp: Language, data=TRAIN_DATA) -> List[Example]:
    return [Example.from_dict(nlp.make_doc(text), {"cats": cats}) for text, cats in data]


# The windows of the shipped configs: up to 510 wordpieces (capped to what the
# encoder takes: 126 for the tiny test encoders), a new window every 96.
WORDPIECE_SPANS: Dict = {
    "@span_getters": "spacy-mlbert.wordpiece_strided_spans.v1",
    "window": 510,
    "stride": 96,
}
SCRIPT_AWARE_TOKENIZER = "spacy-mlbert.ScriptAwareTokenizer.v1"


def transformer_config(
    encoder_dir: Path, *, window: int = 128, stride: int = 96, get_spans: Optional[Dict] = None
) -> Dict:
    """The transformer component's config. Windows are spacy-transformers'
    strided_spans (window and stride in spaCy tokens) unless ``get_spans``
    gives another span getter, e.g. WORDPIECE_SPANS."""
    if get_spans is None:
        get_spans = {
            "@span_getters": "spacy-transformers.strided_spans.v1",
            "window": window,
            "stride": stride,
        }
    return {
        "model": {
            "@architectures": "spacy-mlbert.TransformerModel.v1",
            "name": str(encoder_dir),
            "tokenizer_config": {"use_fast": True},
            "get_spans": dict(get_spans),
        }
    }


# The old head, for the tests of v1 itself: no layer norm before the output layer.
V1_MODEL: Dict = {
    "@architectures": "spacy-mlbert.MultiLabelClassifier.v1",
    "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "mean"},
}


def make_nlp(
    encoder_dir: Path,
    *,
    pooling: Optional[str] = None,
    textcat_config: Optional[Dict] = None,
    get_spans: Optional[Dict] = None,
    tokenizer: Optional[str] = None,
) -> Language:
    """A blank multilingual pipeline: transformer + mlbert_textcat listening to it.

    The classifier is the component's default model, the head the shipped
    configs train: MultiLabelClassifier.v2 (layer norm, dropout, linear) on the
    mean of the wordpieces. A "model" in ``textcat_config`` replaces it (e.g.
    V1_MODEL).

    pooling (Optional[str]): "cls" or "mean" instead of the default's pooling.
    textcat_config (Optional[Dict]): More of the component's config.
    get_spans (Optional[Dict]): The span getter's config (default: strided_spans).
    tokenizer (Optional[str]): A registered tokenizer, e.g. SCRIPT_AWARE_TOKENIZER
        (default: spaCy's own).
    """
    config = {"nlp": {"tokenizer": {"@tokenizers": tokenizer}}} if tokenizer else {}
    nlp = spacy.blank("xx", config=config)
    nlp.add_pipe("transformer", config=transformer_config(encoder_dir, get_spans=get_spans))
    config = {"model": {"tok2vec": {"pooling": pooling}}} if pooling else {}
    config.update(textcat_config or {})
    nlp.add_pipe("mlbert_textcat", config=config)
    return nlp


def save_tiny_pipeline(
    encoder_dir: Path,
    output_dir: Path,
    *,
    steps: int = 4,
    thresholds: Optional[Dict[str, float]] = None,
) -> Path:
    """A transformer + mlbert_textcat pipeline trained ``steps`` updates on
    TRAIN_DATA, with optional per-label thresholds, saved to ``output_dir``."""
    from spacy.util import fix_random_seed

    fix_random_seed(0)
    nlp = make_nlp(encoder_dir)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    if thresholds:
        nlp.get_pipe("mlbert_textcat").set_thresholds(thresholds)
    nlp.to_disk(output_dir)
    return output_dir


def two_overlapping_windows(width: int = 3):
    """Six tokens in two windows of four that overlap on t2 and t3, as the
    transformer gives them: <s> t0 t1 t2 t3 </s> | <s> t2 t3 t4 t5 </s>
    (rows 0-5 and 6-11 of the flattened windows), random outputs."""
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.types import Ragged
    from transformers.file_utils import ModelOutput

    strings = [["<s>", "t0", "t1", "t2", "t3", "</s>"], ["<s>", "t2", "t3", "t4", "t5", "</s>"]]
    ids = numpy.array([[0, 10, 11, 12, 13, 2], [0, 12, 13, 14, 15, 2]], dtype="i")
    # each token's rows in both windows: t2 is rows 3 and 7, t3 rows 4 and 8
    rows = [[1], [2], [3, 7], [4, 8], [9], [10]]
    align = Ragged(numpy.array(sum(rows, []), dtype="i"), numpy.array([len(r) for r in rows], dtype="i"))
    hidden = numpy.random.default_rng(0).normal(size=(2, 6, width)).astype("f")
    wordpieces = WordpieceBatch(strings, ids, numpy.ones((2, 6), dtype="f"), [6, 6], None)
    return TransformerData(wordpieces=wordpieces, model_output=ModelOutput(last_hidden_state=hidden), align=align)


# The (window, position) rows of two_overlapping_windows that a mean counting
# each wordpiece once takes: t2 has more context in the first window (2 rows
# to its end, 1 to the start of the second), t3 in the second, so the overlap
# is cut in its middle; <s> comes from the first window, </s> from the last.
TWO_WINDOWS_COUNTED = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (1, 4), (1, 5)]


# the language of each TRAIN_DATA text, for dev sets built from them
TRAIN_LANGS = ["en", "en", "es", "fr", "zh", "ar"]


def write_dev_docbin(path: Path) -> Path:
    """TRAIN_DATA as a gold dev set (.spacy) with languages and ids, as
    ``convert`` writes one: what tune-thresholds and quantize --dev read."""
    from spacy.tokens import DocBin

    from spacy_mlbert.extensions import install_extensions

    install_extensions()
    nlp = spacy.blank("xx")
    doc_bin = DocBin(store_user_data=True)
    for i, ((text, cats), lang) in enumerate(zip(TRAIN_DATA, TRAIN_LANGS)):
        doc = nlp.make_doc(text)
        doc.cats = dict(cats)
        doc._.mlbert_lang = lang
        doc._.mlbert_id = f"d{i}"
        doc_bin.add(doc)
    doc_bin.to_disk(path)
    return path
