"""Helpers shared by the local annotation (:mod:`.jsonl`) and the engines
(:mod:`.engines`): reading a JSONL line as annotate does, the line windows
that make the batches, predicting a window (inside a memory zone), and
writing an annotated record.

Both engines read, check and write a line through these functions, so the
same input gives the same output (and the same messages) on either.
"""
import json
import math
import multiprocessing
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..data.jsonl import load_object
from ..data.records import DataError
from ..errors import Errors


BOM = b"\xef\xbb\xbf"


TEXT_KEY = "text"


# How many skipped lines keep their message in the returned counts.
MAX_REASONS = 20


class InvalidLine(ValueError):
    """A line that is not a record with a text; the message carries the code."""


class Line(NamedTuple):
    number: int
    record: Optional[Dict[str, Any]]
    problem: Optional[str] = None
    blank: bool = False


def check_n_process(n_process: Any) -> None:
    """Raise a coded error unless ``n_process`` is a positive integer."""
    if isinstance(n_process, bool) or not isinstance(n_process, int) or n_process < 1:
        raise ValueError(Errors.E090.format(option="n_process", expected="a positive integer", value=n_process))


@contextmanager
def spawn_processes() -> Iterator[None]:
    """Make nlp.pipe(n_process=...) start its workers with "spawn".

    spaCy starts them with the platform's default, "fork" on Linux; a child
    forked after torch has run its thread pool hangs on its first forward
    pass. Spawned children load the pipeline afresh instead (slower to start).
    """
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(previous, force=True)


def parse_line(path: Path, number: int, raw: bytes) -> Line:
    """Parse one raw line of a JSONL file, as :func:`annotate_jsonl` does.

    path (Path): The file, for the messages.
    number (int): The 1-based line number (a BOM is stripped on line 1).
    raw (bytes): The line, with its newline if it has one.
    RETURNS (Line): The record, or the problem with the line.
    """
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM):]
    where = describe_line(path, number)
    has_newline = raw.endswith(b"\n")
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        detail = f"byte(s) {raw[err.start:err.end].hex(' ')} at byte {err.start + 1}: {err.reason}"
        return Line(number, None, Errors.E032.format(where=where, detail=detail))
    if not text.strip():
        return Line(number, None, f"{where}: blank line", blank=True)
    record, problem = _parse(text, where, has_newline)
    return Line(number, record, problem)


def check_output_keys(
    record: Dict[str, Any], path: Path, number: int, cats_key: str, labels_key: str
) -> None:
    """Raise E061 if the record already has a field the predictions would overwrite."""
    for key, option in ((cats_key, "--cats-key"), (labels_key, "--labels-key")):
        if key in record:
            raise ValueError(Errors.E061.format(where=describe_line(path, number), key=key, option=option))


def predict_text(record: Dict[str, Any]) -> str:
    """The text the pipeline sees: the converter normalises training texts to
    NFC, so predictions are made on the same form."""
    return unicodedata.normalize("NFC", record[TEXT_KEY])


Prediction = Tuple[Dict[str, float], List[str]]  # probabilities, thresholded labels


def doc_prediction(doc: Doc, labels: List[str]) -> Prediction:
    """What annotate keeps of a document: read while the document is valid
    (inside the memory zone it was made in, see :func:`predict_window`).

    doc (Doc): The document the pipeline made.
    labels (List[str]): The component's labels, in order.
    RETURNS (Prediction): {label: probability} in label order, and the labels.
    """
    return {label: float(doc.cats[label]) for label in labels}, list(doc._.mlbert_labels or [])


def predict_window(nlp: Language, texts: List[str], labels: List[str]) -> List[Prediction]:
    """Predict one window of texts (one nlp.pipe batch) inside its own
    ``nlp.memory_zone()``.

    Without the zone, every new word of a stream stays in the vocab's
    StringStore and lexeme table for good, so memory grows with the stream's
    length; inside it, what the window adds is freed when it ends. The
    documents are invalid after that, so only their predictions leave.

    nlp (Language): The pipeline.
    texts (List[str]): The window's texts.
    labels (List[str]): The component's labels, in order.
    RETURNS (List[Prediction]): One per text, in order.
    """
    with nlp.memory_zone():
        return [doc_prediction(doc, labels) for doc in nlp.pipe(texts, batch_size=len(texts))]


def format_prediction(
    record: Dict[str, Any], prediction: Prediction, cats_key: str, labels_key: str
) -> str:
    """The output line (without newline): the record with the predictions added.

    record (Dict[str, Any]): The input object; it gets the two fields.
    prediction (Prediction): From :func:`doc_prediction`.
    cats_key (str): Field for the probabilities.
    labels_key (str): Field for the thresholded labels.
    RETURNS (str): The JSON line.
    """
    cats, predicted = prediction
    for label, value in cats.items():
        if not math.isfinite(value):
            raise ValueError(Errors.E181.format(label=label, value=value))
    record[cats_key] = cats
    record[labels_key] = predicted
    return dumps(record)


def window_of(number: int, batch_size: int) -> int:
    """The batch (line window) that line ``number`` (1-based) belongs to."""
    return (number - 1) // batch_size


LineRecord = Tuple[int, Dict[str, Any], str]  # line number, record, text to predict


def windows(records: Iterable[LineRecord], batch_size: int) -> Iterator[List[LineRecord]]:
    """Group consecutive records by line window (see the module docstring)."""
    batch: List[LineRecord] = []
    for item in records:
        if batch and window_of(item[0], batch_size) != window_of(batch[0][0], batch_size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def window_texts(window: List[LineRecord]) -> List[str]:
    """The texts to predict of a window's records."""
    return [text for _, _, text in window]


def dumps(record: Dict[str, Any]) -> str:
    """One JSON line, strictly JSON: NaN or Infinity raise ValueError (the
    input lines are checked for them, E180; the predictions, E181)."""
    line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    try:
        line.encode("utf8")
    except UnicodeEncodeError:
        # a lone surrogate (from an escape like \ud800 in another field) can't
        # be written as UTF-8; escaped, it round-trips unchanged
        line = json.dumps(record, ensure_ascii=True, allow_nan=False)
    return line


def describe_line(path: Path, number: int) -> str:
    return f"{path}, line {number}"


def _parse(text: str, where: str, has_newline: bool) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    # the converter's parser: the same lines refused (a key given twice, E037),
    # and NaN or Infinity too, which could not be written back as JSON (E180)
    try:
        value = load_object(text, where, truncated=not has_newline, finite=True)
    except DataError as err:
        return None, str(err)
    if TEXT_KEY not in value or value[TEXT_KEY] is None:
        problem = "missing" if TEXT_KEY not in value else "null"
        return value, Errors.E023.format(where=where, problem=problem)
    text_value = value[TEXT_KEY]
    if not isinstance(text_value, str):
        return value, Errors.E024.format(where=where, kind=type(text_value).__name__, value=repr(text_value)[:40])
    if not text_value.strip():
        return value, Errors.E025.format(where=where, problem="is empty or holds only whitespace")
    if any("\ud800" <= char <= "\udfff" for char in text_value):
        problem = "holds a lone surrogate (an escape such as \\ud800 that is not a character)"
        return value, Errors.E025.format(where=where, problem=problem)
    return value, None


def count_lines(path: Path) -> int:
    """Lines in the file (a last line without a newline counts), for the progress bar."""
    count = 0
    last = b"\n"
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + int(last != b"\n")
