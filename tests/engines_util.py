"""Shared by the engine tests: generated records, gold documents, a saved tiny pipeline."""
import json
from pathlib import Path

import numpy
from spacy.tokens import DocBin
from spacy.util import fix_random_seed

from spacy_mlbert.annotate.jsonl import annotate_jsonl
from spacy_mlbert.extensions import install_extensions
from util import TOKENIZER_TEXTS, TRAIN_DATA, make_examples, make_nlp

BATCH = 8
LANGS = ["en", "es", "fr", "de", "ru", "hi", "zh", "ar", "am"]


def corpus(n: int, seed: int = 0):
    """Short generated multilingual records with ids and extra fields."""
    rng = numpy.random.default_rng(seed)
    texts = TOKENIZER_TEXTS
    for i in range(n):
        a, b = rng.integers(0, len(texts), size=2)
        yield {
            "id": f"doc-{i}" if i % 7 else i,
            "lang": LANGS[i % len(LANGS)],
            "text": f"{texts[a]} {texts[b]}",
            "meta": {"n": i, "tags": ["x"] * (i % 3), "score": None},
        }


def write_lines(path: Path, lines) -> Path:
    with path.open("w", encoding="utf8", newline="\n") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return path


def save_tiny_pipeline(encoder_dir: Path, output_dir: Path) -> Path:
    """A tiny transformer + mlbert_textcat pipeline, trained a few steps, on disk,
    with thresholds that differ per label."""
    fix_random_seed(0)
    nlp = make_nlp(encoder_dir)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    for _ in range(4):
        nlp.update(examples, sgd=optimizer)
    nlp.get_pipe("mlbert_textcat").set_thresholds({"positive": 0.3, "slow": 0.7})
    nlp.to_disk(output_dir)
    return output_dir


def make_gold(nlp, repeat: int, prefix: str = "g") -> DocBin:
    """Gold documents with cats, languages and ids, as the converter writes them."""
    install_extensions()
    doc_bin = DocBin(store_user_data=True)
    for i, (text, cats) in enumerate(TRAIN_DATA * repeat):
        doc = nlp.make_doc(text if i % 2 else f"{text} {prefix}{i}")
        doc.cats = dict(cats)
        doc._.mlbert_lang = LANGS[i % 3]
        doc._.mlbert_id = f"{prefix}{i}"
        doc_bin.add(doc)
    return doc_bin


def local_output(nlp, source: Path, target: Path, **kwargs):
    """Annotate with the local engine; RETURNS the counts and the output text."""
    counts = annotate_jsonl(nlp, source, target, batch_size=BATCH, progress=False, **kwargs)
    return counts, target.read_text(encoding="utf8")
