"""Shared test data and helpers: tiny multilingual examples and tiny encoders."""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def transformer_config(encoder_dir: Path, *, window: int = 128, stride: int = 96) -> Dict:
    return {
        "model": {
            "@architectures": "spacy-mlbert.TransformerModel.v1",
            "name": str(encoder_dir),
            "tokenizer_config": {"use_fast": True},
            "get_spans": {
                "@span_getters": "spacy-transformers.strided_spans.v1",
                "window": window,
                "stride": stride,
            },
        }
    }


def make_nlp(
    encoder_dir: Path,
    *,
    pooling: str = "cls",
    textcat_config: Optional[Dict] = None,
) -> Language:
    """A blank multilingual pipeline: transformer + mlbert_textcat listening to it."""
    nlp = spacy.blank("xx")
    nlp.add_pipe("transformer", config=transformer_config(encoder_dir))
    config = {
        "model": {
            "@architectures": "spacy-mlbert.MultiLabelClassifier.v1",
            "dropout": 0.0,
            "doc_encoder": {
                "@architectures": "spacy-mlbert.WordpieceListener.v1",
                "pooling": pooling,
            },
        }
    }
    config.update(textcat_config or {})
    nlp.add_pipe("mlbert_textcat", config=config)
    return nlp
