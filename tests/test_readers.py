import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import make_tempdir, registry

from spacy_mlbert import install_extensions

DOCS = [("en", "Good"), ("es", "Bueno"), ("zh", "好"), ("en", "Bad"), ("ar", "سيء")]


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({}, ["Good", "Bueno", "好", "Bad", "سيء"]),
        ({"langs": ["en", "zh"]}, ["Good", "好", "Bad"]),
        ({"langs": "en, zh"}, ["Good", "好", "Bad"]),  # as given on the command line
        ({"exclude_langs": ["en"]}, ["Bueno", "好", "سيء"]),
        ({"langs": ["en"], "limit": 1}, ["Good"]),
    ],
)
def test_readers_multilingual_corpus_filters_languages(settings, expected):
    install_extensions()
    nlp = spacy.blank("xx")
    docs = []
    for lang, text in DOCS:
        doc = nlp.make_doc(text)
        doc.cats = {"positive": 1.0}
        doc._.mlbert_lang = lang
        docs.append(doc)
    with make_tempdir() as tmp_dir:
        DocBin(docs=docs, store_user_data=True).to_disk(tmp_dir / "data.spacy")
        reader = registry.resolve(
            {"r": {"@readers": "spacy-mlbert.MultilingualCorpus.v1", "path": str(tmp_dir / "data.spacy"), **settings}}
        )["r"]
        texts = [eg.reference.text for eg in reader(nlp)]
    assert texts == expected
