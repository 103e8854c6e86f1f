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
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, Union

from spacy.language import Language
from tqdm import tqdm

from ..atomic import atomic_open
from ..errors import Errors
from ..evaluation.evaluate import DEFAULT_BATCH_SIZE, check_batch_size, find_textcat, load_pipeline
from .util import (
    InvalidLine,
    Line,
    LineRecord,
    MAX_REASONS,
    check_n_process,
    check_output_keys,
    count_lines,
    format_prediction,
    parse_line,
    predict_text,
    predict_window,
    window_texts,
    windows,
)
from .workers import predict_windows

logger = logging.getLogger("spacy_mlbert")


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

    The output is written to a temporary file that is synced to disk and
    replaces ``output_path`` only when every line was handled
    (spacy_mlbert.atomic), so an error or a power cut leaves no partial
    output. Each window is predicted inside its own ``nlp.memory_zone()``, so
    memory stays flat over any stream length (see util.predict_window).

    nlp (Language): A pipeline with an ``mlbert_textcat`` component.
    input_path (Union[str, Path]): JSONL file, one object with a "text" per line.
    output_path (Union[str, Path]): JSONL file to write.
    batch_size (int): Lines per batch: the records of each window of
        ``batch_size`` lines go through nlp.pipe together.
    skip_invalid (bool): Skip (and count) invalid lines instead of raising.
    cats_key (str): Output field for the probabilities.
    labels_key (str): Output field for the thresholded labels.
    progress (bool): Show a tqdm progress bar (on stderr).
    n_process (int): Processes that predict the windows; above 1, spawned
        workers (spacy_mlbert.annotate.workers), with the same windows and so
        the same output as one process.
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
    with atomic_open(output_path) as out, tqdm(
        total=count_lines(input_path),
        unit="line",
        desc="Annotating",
        disable=not progress,
        leave=False,
    ) as bar:
        records = _valid_records(
            input_path, counts, bar, skip_invalid=skip_invalid, cats_key=cats_key, labels_key=labels_key
        )
        if n_process == 1:
            predicted = (
                (window, predict_window(nlp, window_texts(window), labels)) for window in windows(records, batch_size)
            )
        else:
            predicted = predict_windows(nlp, windows(records, batch_size), labels, n_process)
        for window, predictions in predicted:
            for (_, record, _), prediction in zip(window, predictions):
                out.write(format_prediction(record, prediction, cats_key, labels_key) + "\n")
            counts["written"] += len(window)
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


def _valid_records(
    path: Path,
    counts: Dict[str, Any],
    bar: Any,
    *,
    skip_invalid: bool,
    cats_key: str,
    labels_key: str,
) -> Iterator[LineRecord]:
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


def _skip(counts: Dict[str, Any], line: Line) -> None:
    counts["skipped"] += 1
    counts["blank"] += int(line.blank)
    counts["skipped_lines"].append(line.number)
    if len(counts["reasons"]) < MAX_REASONS:
        counts["reasons"][line.number] = line.problem


def _iter_records(path: Path) -> Iterator[Line]:
    """Yield every line of the file, parsed, with its problem if it has one."""
    with path.open("rb") as file_:
        for number, raw in enumerate(file_, start=1):
            yield parse_line(path, number, raw)


def _check_paths(input_path: Path, output_path: Path) -> None:
    if not input_path.exists():
        raise ValueError(Errors.E059.format(what="Input file", path=input_path, problem="does not exist"))
    if not input_path.is_file():
        raise ValueError(Errors.E059.format(what="Input file", path=input_path, problem="is not a file"))
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(Errors.E060.format(path=output_path))
    if output_path.is_dir():
        raise ValueError(Errors.E059.format(what="Output file", path=output_path, problem="is a folder"))
