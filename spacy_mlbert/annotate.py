"""Annotate a JSONL file: every record gets the model's probabilities and labels.

Each input line gives one output line, in order, with all of its fields kept
plus ``"cats"`` ({label: probability}) and ``"labels"`` (the labels at or
above their thresholds). No line is dropped silently: an invalid line stops
the run with its file and line number, or, with ``skip_invalid``, is counted
and reported; blank lines are always skipped and counted. So
``read == written + skipped`` always holds.

The records are read here rather than with ``spacy_mlbert.data``: that
reader turns lines into training records (ids filled in, labels resolved),
while annotation must give back each object exactly as it came.
"""
import json
import logging
import os
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from spacy.language import Language
from tqdm import tqdm

from .errors import Errors
from .evaluation import DEFAULT_BATCH_SIZE, check_batch_size, find_textcat, load_pipeline

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
) -> Dict[str, Any]:
    """Stream a JSONL file through the pipeline and write the annotated records.

    The output is written to a temporary file that replaces ``output_path``
    only when every line was handled, so an error leaves no partial output.

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    input_path (Union[str, Path]): JSONL file, one object with a "text" per line.
    output_path (Union[str, Path]): JSONL file to write.
    batch_size (int): Records per batch.
    skip_invalid (bool): Skip (and count) invalid lines instead of raising.
    cats_key (str): Output field for the probabilities.
    labels_key (str): Output field for the thresholded labels.
    progress (bool): Show a tqdm progress bar (on stderr).
    RETURNS (Dict[str, Any]): read, written, skipped, blank (lines read,
        records written, lines skipped, of which blank), skipped_lines (their
        numbers) and reasons ({line: message} for the first skipped lines).
    """
    check_batch_size(batch_size)
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
            batch: List[Tuple[Dict[str, Any], str]] = []
            for line in _iter_records(input_path):
                counts["read"] += 1
                bar.update(1)
                if line.problem is not None or line.record is None:
                    if not (skip_invalid or line.blank):
                        raise InvalidLine(line.problem)
                    _skip(counts, line)
                    continue
                record = line.record
                for key, option in ((cats_key, "--cats-key"), (labels_key, "--labels-key")):
                    if key in record:
                        where = _where(input_path, line.number)
                        raise ValueError(Errors.E061.format(where=where, key=key, option=option))
                # the converter normalises training texts to NFC: predict on the same form
                text = unicodedata.normalize("NFC", record[TEXT_KEY])
                batch.append((record, text))
                if len(batch) >= batch_size:
                    counts["written"] += _write_batch(nlp, batch, labels, out, cats_key, labels_key)
                    batch = []
            if batch:
                counts["written"] += _write_batch(nlp, batch, labels, out, cats_key, labels_key)
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


def _write_batch(
    nlp: Language,
    batch: List[Tuple[Dict[str, Any], str]],
    labels: List[str],
    out: Any,
    cats_key: str,
    labels_key: str,
) -> int:
    docs = nlp.pipe([text for _, text in batch], batch_size=len(batch))
    for (record, _), doc in zip(batch, docs):
        record[cats_key] = {label: float(doc.cats[label]) for label in labels}
        record[labels_key] = list(doc._.mlbert_labels or [])
        out.write(_dumps(record) + "\n")
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
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            where = _where(path, number)
            has_newline = raw.endswith(b"\n")
            try:
                text = raw.decode("utf8")
            except UnicodeDecodeError as err:
                detail = f"byte(s) {raw[err.start:err.end].hex(' ')} at byte {err.start + 1}: {err.reason}"
                yield _Line(number, None, Errors.E032.format(where=where, detail=detail))
                continue
            if not text.strip():
                yield _Line(number, None, f"{where}: blank line", blank=True)
                continue
            record, problem = _parse(text, where, has_newline)
            yield _Line(number, record, problem)


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
