"""Records to spaCy DocBins and back.

Each record becomes ``nlp.make_doc(text)`` (tokenization only) with

- ``doc.cats``: the known labels as 1.0/0.0 (unknown labels left out);
- ``doc._.mlbert_lang`` and ``doc._.mlbert_id``;
- ``doc.user_data["mlbert_meta"]``: the other fields of the source record, as a
  JSON string (so that values come back exactly; msgpack would turn lists into
  tuples), only when there are any;
- ``doc.user_data["mlbert_source"]``: "file name:line" of the record.

The DocBin stores user data (``store_user_data=True``), which carries the
extension values.
"""
import json
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..extensions import install_extensions
from .records import PathLike, Record

META_KEY = "mlbert_meta"
SOURCE_KEY = "mlbert_source"
# spaCy's multi-language tokenizer: rule-based, works for every script it can
# split on spaces and punctuation
DEFAULT_LANG = "xx"


def make_nlp(nlp: Union[Language, str, None] = None) -> Language:
    """RETURNS (Language): the given pipeline, or a blank one for a language code."""
    if isinstance(nlp, Language):
        return nlp
    return spacy.blank(nlp or DEFAULT_LANG)


def record_to_doc(record: Record, nlp: Language, labels: Optional[Sequence[str]] = None) -> Doc:
    """Make the Doc of one record.

    record (Record): the record.
    nlp (Language): the pipeline whose tokenizer to use.
    labels (Optional[Sequence[str]]): the label set, to order doc.cats and to
        fill in the negatives of a record that is not finalized.
    RETURNS (Doc): the doc.
    """
    doc = nlp.make_doc(record.text)
    doc.cats = record.known_cats(labels)
    doc._.mlbert_lang = record.lang
    doc._.mlbert_id = record.id
    if record.meta:
        # ensure_ascii: lone surrogates in the source's other fields survive msgpack
        doc.user_data[META_KEY] = json.dumps(record.meta, ensure_ascii=True)
    doc.user_data[SOURCE_KEY] = f"{Path(record.source).name}:{record.line}"
    return doc


def records_to_docbin(
    records: Iterable[Record],
    nlp: Union[Language, str, None] = None,
    *,
    labels: Optional[Sequence[str]] = None,
) -> DocBin:
    """Convert records to a DocBin.

    records (Iterable[Record]): the records.
    nlp (Union[Language, str, None]): a pipeline, or a language code for a blank
        one (default "xx", the multi-language tokenizer).
    labels (Optional[Sequence[str]]): the label set (see :func:`record_to_doc`).
    RETURNS (DocBin): the docs, with user data.
    """
    install_extensions()
    nlp = make_nlp(nlp)
    docbin = DocBin(store_user_data=True)
    for record in records:
        docbin.add(record_to_doc(record, nlp, labels))
    return docbin


def doc_to_record(doc: Doc) -> Record:
    """Rebuild the record of a converted doc (the inverse of :func:`record_to_doc`).

    doc (Doc): a doc from a DocBin that ``convert`` wrote.
    RETURNS (Record): the record; ``source`` is the file name only.
    """
    install_extensions()
    meta = json.loads(doc.user_data[META_KEY]) if META_KEY in doc.user_data else {}
    source, _, line = str(doc.user_data.get(SOURCE_KEY, ":0")).rpartition(":")
    return Record(
        id=doc._.mlbert_id,
        lang=doc._.mlbert_lang,
        text=doc.text,
        cats=dict(doc.cats),
        source=source,
        line=int(line) if line.isdigit() else 0,
        meta=meta,
    )


def read_docbin(path: PathLike, nlp: Union[Language, str, None] = None) -> List[Doc]:
    """Read the docs of a .spacy file, or of a folder of them (``convert``'s
    shards, in name order), with their extension values.

    path (PathLike): the file or folder.
    nlp (Union[Language, str, None]): a pipeline or language code for the vocab.
    RETURNS (List[Doc]): the docs.
    """
    from ..evaluation.evaluate import docbin_files

    install_extensions()
    nlp = make_nlp(nlp)
    return [doc for file in docbin_files(path) for doc in DocBin().from_disk(file).get_docs(nlp.vocab)]
