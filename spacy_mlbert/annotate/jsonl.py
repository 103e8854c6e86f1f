"""Annotate a JSONL file: every record gets the model's probabilities and labels.

Each input line gives one output line, in order, with all of its fields kept
plus ``"cats"`` ({label: probability}) and ``"labels"`` (the labels at or
above their thresholds). No line is dropped silently: an invalid line stops
the run with its file and line number, or, with ``skip_invalid``, is counted
and reported; blank lines are always skipped and counted. So
``read == written + skipped`` always holds.

Batches are windows of input lines: the records of lines 1..B go through
``nlp.pipe`` together, then those of lines B+1..2B, and so on. A transformer's
float results depend (in the last bits) on which texts share a padded batch,
so fixing the batches by line number lets another engine that cuts the input
at multiples of B (``spacy_mlbert.annotate.engines.ray_engine``) give byte-identical
output.

The records are read here rather than with ``spacy_mlbert.data``: that
reader turns lines into training records (ids filled in, labels resolved),
while annotation must give back each object exactly as it came.
"""
import json
import logging
import multiprocessing
import os
import unicodedata
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from ..errors import Errors
from ..evaluation.evaluate import DEFAULT_BATCH_SIZE, check_batch_size, find_textcat, load_pipeline

logger = logging.getLogger("spacy_mlbert")

BOM = b"\xef\xbb\xbf"
TEXT_KEY = "text"
# How many skipped lines keep their message in the returned counts.
MAX_REASONS = 20


class InvalidLine(ValueError):
    """A line that is not a record with a text; the message carries the code."""


class _Line(NamedTuple):
    number: int
    record: Optional[Dict[str, Any]]
    problem: Optional[str] = None
    blank: bool = False


def annotate_jsonl(
    nlp: Language,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    skip_invalid: bool = False,
    cats_key: str = "cats",
    labels_key: str = "labels",
    progress: bool = True,
    n_process: int = 1,
) -> Dict[str, Any]:
    """Stream a JSONL file through the pipeline and write the annotated records.

    The output is written to a temporary file that replaces ``output_path``
    only when every line was handled, so an error leaves no partial output.

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    input_path (Union[str, Path]): JSONL file, one object with a "text" per line.
    output_path (Union[str, Path]): JSONL file to write.
    batch_size (int): Lines per batch: the records of each window of
        ``batch_size`` lines go through nlp.pipe together.
    skip_invalid (bool): Skip (and count) invalid lines instead of raising.
    cats_key (str): Output field for the probabilities.
    labels_key (str): Output field for the thresholded labels.
    progress (bool): Show a tqdm progress bar (on stderr).
    n_process (int): Processes for nlp.pipe; above 1, spaCy's multiprocessing
        makes the batches (of ``batch_size`` records rather than line windows).
    RETURNS (Dict[str, Any]): read, written, skipped, blank (lines read,
        records written, lines skipped, of which blank), skipped_lines (their
        numbers) and reasons ({line: message} for the first skipped lines).
    """
    check_batch_size(batch_size)
    check_n_process(n_process)
    if cats_key == labels_key:
        raise ValueError(Errors.E064.format(key=cats_key))
    input_path, output_path = Path(input_path), Path(output_path)
    _check_paths(input_path, output_path)
    _, textcat = find_textcat(nlp)
    labels = list(textcat.labels)
    counts: Dict[str, Any] = {
        "read": 0,
        "written": 0,
        "skipped": 0,
        "blank": 0,
        "skipped_lines": [],
        "reasons": {},
    }
    output_path.parent.mkdir(parents=True, exist_ok=True)
    # same folder, so that the final rename cannot cross file systems
    tmp_path = output_path.parent / f".{output_path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with tmp_path.open("x", encoding="utf8", newline="\n") as out, tqdm(
            total=_count_lines(input_path),
            unit="line",
            desc="Annotating",
            disable=not progress,
            leave=False,
        ) as bar:
            records = _valid_records(
                input_path, counts, bar, skip_invalid=skip_invalid, cats_key=cats_key, labels_key=labels_key
            )
            if n_process == 1:
                for window in _windows(records, batch_size):
                    counts["written"] += _write_batch(nlp, window, labels, out, cats_key, labels_key)
            else:
                pairs = ((text, record) for _, record, text in records)
                with spawn_processes():
                    docs = nlp.pipe(pairs, as_tuples=True, batch_size=batch_size, n_process=n_process)
                    for doc, record in docs:
                        out.write(format_record(record, doc, labels, cats_key, labels_key) + "\n")
                        counts["written"] += 1
        os.replace(tmp_path, output_path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    if counts["skipped"]:
        logger.info(
            "Skipped %d of %d line(s) of '%s' (%d blank).",
            counts["skipped"],
            counts["read"],
            input_path,
            counts["blank"],
        )
    return counts


def annotate(
    model_path: Union[str, Path],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    **kwargs: Any,
) -> Dict[str, Any]:
    """Load a pipeline and annotate a JSONL file with it (see annotate_jsonl).

    model_path (Union[str, Path]): The pipeline.
    input_path (Union[str, Path]): JSONL file to read.
    output_path (Union[str, Path]): JSONL file to write.
    RETURNS (Dict[str, Any]): The counts.
    """
    _check_paths(Path(input_path), Path(output_path))
    return annotate_jsonl(load_pipeline(model_path), input_path, output_path, **kwargs)


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


def parse_line(path: Path, number: int, raw: bytes) -> _Line:
    """Parse one raw line of a JSONL file, as :func:`annotate_jsonl` does.

    path (Path): The file, for the messages.
    number (int): The 1-based line number (a BOM is stripped on line 1).
    raw (bytes): The line, with its newline if it has one.
    RETURNS (_Line): The record, or the problem with the line.
    """
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM):]
    where = _where(path, number)
    has_newline = raw.endswith(b"\n")
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        detail = f"byte(s) {raw[err.start:err.end].hex(' ')} at byte {err.start + 1}: {err.reason}"
        return _Line(number, None, Errors.E032.format(where=where, detail=detail))
    if not text.strip():
        return _Line(number, None, f"{where}: blank line", blank=True)
    record, problem = _parse(text, where, has_newline)
    return _Line(number, record, problem)


def check_output_keys(
    record: Dict[str, Any], path: Path, number: int, cats_key: str, labels_key: str
) -> None:
    """Raise E061 if the record already has a field the predictions would overwrite."""
    for key, option in ((cats_key, "--cats-key"), (labels_key, "--labels-key")):
        if key in record:
            raise ValueError(Errors.E061.format(where=_where(path, number), key=key, option=option))


def predict_text(record: Dict[str, Any]) -> str:
    """The text the pipeline sees: the converter normalises training texts to
    NFC, so predictions are made on the same form."""
    return unicodedata.normalize("NFC", record[TEXT_KEY])


def format_record(
    record: Dict[str, Any], doc: Doc, labels: List[str], cats_key: str, labels_key: str
) -> str:
    """The output line (without newline): the record with the predictions added.

    record (Dict[str, Any]): The input object; it gets the two fields.
    doc (Doc): The document the pipeline made from the record's text.
    labels (List[str]): The component's labels, in order.
    cats_key (str): Field for the probabilities.
    labels_key (str): Field for the thresholded labels.
    RETURNS (str): The JSON line.
    """
    record[cats_key] = {label: float(doc.cats[label]) for label in labels}
    record[labels_key] = list(doc._.mlbert_labels or [])
    return _dumps(record)


def window_of(number: int, batch_size: int) -> int:
    """The batch (line window) that line ``number`` (1-based) belongs to."""
    return (number - 1) // batch_size


_Record = Tuple[int, Dict[str, Any], str]  # line number, record, text to predict


def _valid_records(
    path: Path,
    counts: Dict[str, Any],
    bar: Any,
    *,
    skip_invalid: bool,
    cats_key: str,
    labels_key: str,
) -> Iterator[_Record]:
    """The valid records of the file; counts and skips every other line."""
    for line in _iter_records(path):
        counts["read"] += 1
        bar.update(1)
        if line.problem is not None or line.record is None:
            if not (skip_invalid or line.blank):
                raise InvalidLine(line.problem)
            _skip(counts, line)
            continue
        check_output_keys(line.record, path, line.number, cats_key, labels_key)
        yield line.number, line.record, predict_text(line.record)


def _windows(records: Iterable[_Record], batch_size: int) -> Iterator[List[_Record]]:
    """Group consecutive records by line window (see the module docstring)."""
    batch: List[_Record] = []
    for item in records:
        if batch and window_of(item[0], batch_size) != window_of(batch[0][0], batch_size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _write_batch(
    nlp: Language,
    batch: List[_Record],
    labels: List[str],
    out: Any,
    cats_key: str,
    labels_key: str,
) -> int:
    docs = nlp.pipe([text for _, _, text in batch], batch_size=len(batch))
    for (_, record, _), doc in zip(batch, docs):
        out.write(format_record(record, doc, labels, cats_key, labels_key) + "\n")
    return len(batch)


def _dumps(record: Dict[str, Any]) -> str:
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf8")
    except UnicodeEncodeError:
        # a lone surrogate (from an escape like \ud800 in another field) can't
        # be written as UTF-8; escaped, it round-trips unchanged
        line = json.dumps(record, ensure_ascii=True)
    return line


def _skip(counts: Dict[str, Any], line: _Line) -> None:
    counts["skipped"] += 1
    counts["blank"] += int(line.blank)
    counts["skipped_lines"].append(line.number)
    if len(counts["reasons"]) < MAX_REASONS:
        counts["reasons"][line.number] = line.problem


def _where(path: Path, number: int) -> str:
    return f"{path}, line {number}"


def _iter_records(path: Path) -> Iterator[_Line]:
    """Yield every line of the file, parsed, with its problem if it has one."""
    with path.open("rb") as file_:
        for number, raw in enumerate(file_, start=1):
            yield parse_line(path, number, raw)


def _parse(text: str, where: str, has_newline: bool) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    try:
        value = json.loads(text)
    except RecursionError:
        return None, Errors.E020.format(where=where, detail="nested too deeply")
    except json.JSONDecodeError as err:
        template = Errors.E020 if has_newline else Errors.E021
        return None, template.format(where=where, detail=f"{err.msg} at column {err.colno}")
    except ValueError as err:  # e.g. an integer too long to convert
        return None, Errors.E020.format(where=where, detail=str(err))
    if not isinstance(value, dict):
        return None, Errors.E022.format(where=where, kind=type(value).__name__)
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


def _count_lines(path: Path) -> int:
    """Lines in the file (a last line without a newline counts), for the progress bar."""
    count = 0
    last = b"\n"
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + int(last != b"\n")


def _check_paths(input_path: Path, output_path: Path) -> None:
    if not input_path.exists():
        raise ValueError(Errors.E059.format(what="Input file", path=input_path, problem="does not exist"))
    if not input_path.is_file():
        raise ValueError(Errors.E059.format(what="Input file", path=input_path, problem="is not a file"))
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(Errors.E060.format(path=output_path))
    if output_path.is_dir():
        raise ValueError(Errors.E059.format(what="Output file", path=output_path, problem="is a folder"))
