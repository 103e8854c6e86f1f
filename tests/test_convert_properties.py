"""Property tests of the converter: random texts, label sets and malformed lines."""
import csv
import io
import json
import unicodedata
from typing import Dict, List

import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.util import make_tempdir

from spacy_mlbert.data import read_records, records_to_docbin
from spacy_mlbert.extensions import install_extensions

install_extensions()
NLP = spacy.blank("xx")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

label_names = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6).map(
    lambda name: unicodedata.normalize("NFC", name)
)
label_sets = st.lists(label_names, min_size=1, max_size=5, unique=True)
texts = st.text(min_size=1, max_size=40).filter(lambda text: text.strip())
langs = st.one_of(st.none(), st.sampled_from(["en", "es", "eng", "pt-BR", "zh_Hant"]))

# lines that are never a valid record, each a different problem
MALFORMED = [
    b"not json",
    b"{",
    b"[1, 2]",
    b"42",
    b"null",
    b'{"labels": []}',
    b'{"text": "", "labels": []}',
    b'{"text": "  ", "labels": []}',
    b'{"text": 1, "labels": []}',
    b'{"text": "x", "labels": "a"}',
    b'{"text": "x", "labels": [null]}',
    b'{"text": "x", "cats": {"a": 2}}',
    b'{"text": "x", "cats": {"a": true}}',
    b'{"text": "x", "cats": {"a": NaN}}',
    b'{"text": "x", "cats": []}',
    b'{"text": "x"}',
    b'{"text": "x", "labels": [], "cats": {}}',
    b'{"text": "x", "labels": [], "text": "y"}',
    b'{"text": "caf\xe9", "labels": []}',
    b"\xff\xfe\xfd",
    b'{"text": "x", "labels": [], "lang": ""}',
]
# random junk: starts with "#", which no JSON value does
junk = st.text(min_size=0, max_size=20).map(lambda s: ("#" + s).replace("\n", " ").replace("\r", " ").encode("utf-8"))
bad_lines = st.one_of(st.sampled_from(MALFORMED), junk)
blank_lines = st.sampled_from([b"", b" ", b"\t", b"  \t "])


@st.composite
def jsonl_files(draw):
    labels = draw(label_sets)
    items = []  # (kind, bytes, expected record or None)
    for index in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "bad", "blank"]))
        if kind == "bad":
            items.append(("bad", draw(bad_lines), None))
        elif kind == "blank":
            items.append(("blank", draw(blank_lines), None))
        else:
            text = draw(texts)
            lang = draw(langs)
            obj: Dict = {"text": text}
            if draw(st.booleans()):
                obj["id"] = f"rec-{index}"
            if lang is not None:
                obj["lang"] = lang
            if draw(st.booleans()):
                positives = draw(st.lists(st.sampled_from(labels), unique=True))
                obj["labels"] = positives
                cats = {label: float(label in positives) for label in labels}
            else:
                values = draw(st.dictionaries(st.sampled_from(labels), st.sampled_from([0, 1, 0.0, 1.0])))
                obj["cats"] = values
                cats = {label: float(value) for label, value in values.items()}
            if draw(st.booleans()):
                obj["extra"] = draw(st.one_of(st.integers(), texts, st.lists(st.integers(), max_size=3)))
            ensure_ascii = draw(st.booleans())
            line = json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8")
            expected = {
                "text": unicodedata.normalize("NFC", text),
                "lang": lang or "xx",
                "cats": cats,
                "id": obj.get("id"),
                "extra": obj.get("extra"),
            }
            items.append(("valid", line, expected))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    content = ending.join(line for _, line, _ in items)
    # an empty last line exists only if a line ending follows it
    if draw(st.booleans()) or not items[-1][1]:
        content += ending
    if draw(st.booleans()):
        content = b"\xef\xbb\xbf" + content
    return labels, items, content


@SETTINGS
@given(jsonl_files())
def test_skip_invalid_never_raises_counts_add_up_and_valid_lines_round_trip(data):
    labels, items, content = data
    with make_tempdir() as d:
        path = d / "data.jsonl"
        path.write_bytes(content)
        records, report = read_records(path, label_set=labels, skip_invalid=True)
        docbin = records_to_docbin(records, NLP, labels=report.labels)
        docbin.to_disk(d / "data.spacy")
        docs = list(DocBin().from_disk(d / "data.spacy").get_docs(NLP.vocab))
    expected = [(number, exp) for number, (kind, _, exp) in enumerate(items, start=1) if kind == "valid"]
    n_blank = sum(kind == "blank" for kind, _, _ in items)
    n_bad = sum(kind == "bad" for kind, _, _ in items)
    assert report.read == len(items)
    assert (report.blank, report.converted, report.skipped) == (n_blank, len(expected), n_bad)
    assert report.counts_add_up
    assert sorted(issue.line for issue in report.issues if issue.line) == [
        number for number, (kind, _, _) in enumerate(items, start=1) if kind == "bad"
    ]
    assert len(docs) == len(expected)
    for doc, record, (number, exp) in zip(docs, records, expected):
        assert record.line == number
        assert doc.text == exp["text"]
        assert doc.cats == exp["cats"]
        assert doc._.mlbert_lang == exp["lang"]
        assert doc._.mlbert_id == (exp["id"] or f"data:{number}")
        if exp["extra"] is not None:
            assert json.loads(doc.user_data["mlbert_meta"]) == {"extra": exp["extra"]}


@st.composite
def semeval_files(draw):
    labels = draw(label_sets)
    rows: List[Dict] = []
    for index in range(draw(st.integers(1, 8))):
        # commas, quotes, line breaks and NULs inside texts must survive the CSV layer
        text = draw(st.one_of(texts, st.sampled_from(['a, "b"', "x\ny", "x\r\ny", "tab\there", "\x00z", " pad "])))
        cells = {label: draw(st.sampled_from(["0", "1", ""])) for label in labels}
        rows.append({"id": f"id{index}", "text": text, "cells": cells})
    buffer = io.StringIO(newline="")
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(["id", "text", *labels])
    for row in rows:
        writer.writerow([row["id"], row["text"], *row["cells"].values()])
    return labels, rows, buffer.getvalue(), terminator


def _unquoted_carriage_return(text: str, terminator: str) -> bool:
    """With "\n" line ends, the csv writer quotes a field only for a comma, a
    quote or a "\n": a lone "\r" stays unquoted, and no CSV reader can tell
    it from a line break. Such files are not valid CSV."""
    return terminator == "\n" and "\r" in text and not any(c in text for c in ',"\n')


@SETTINGS
@given(semeval_files())
def test_semeval_texts_and_values_round_trip(data):
    labels, rows, content, terminator = data
    if any(_unquoted_carriage_return(row["text"], terminator) for row in rows):
        return
    with make_tempdir() as d:
        path = d / "eng.csv"
        path.write_text(content, encoding="utf-8", newline="")
        records, report = read_records(path, skip_invalid=True)
        docs = list(records_to_docbin(records, NLP).get_docs(NLP.vocab))
    assert report.counts_add_up and report.converted == len(rows) and not report.issues
    for doc, row in zip(docs, rows):
        assert doc.text == unicodedata.normalize("NFC", row["text"])
        assert doc.cats == {label: float(value) for label, value in row["cells"].items() if value}
        assert doc._.mlbert_lang == "eng" and doc._.mlbert_id == row["id"]
