"""SemEval-2025 Task 11 (BRIGHTER) track A CSV: ``id,text,<label columns>``.

- The language is the file name's stem (``eng.csv`` -> ``eng``), when the stem
  looks like a language code; otherwise the ``lang`` option, else "xx".
- Every column other than ``id`` and ``text`` is a label column, holding 0 or 1
  (``0.0``/``1.0`` are accepted too). An empty cell means unknown.
- A label that the file has no column for is unknown for all of its texts
  (e.g. ``eng.csv`` has no ``disgust`` column), so it is left out of doc.cats.
- Header names are stripped of surrounding spaces; cell values are not.
- Report counts are CSV rows (a quoted text may span several lines), the
  header excluded; ``Record.line`` is the line where the row starts.
- A bad header is a problem of the whole file and raises even with
  skip_invalid; a bad row is skipped with skip_invalid.
"""
import csv
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import Errors
from .labels import check_label_name
from .lines import iter_lines
from .records import DataError, PathLike, Record, where
from .validate import (
    FALLBACK_LANG,
    LANG_RE,
    ReadContext,
    check_id,
    check_text,
    describe,
    empty_file_error,
)

_VALUES = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}
_ROW_HINT = (
    "Quote fields that hold commas, quotes or line breaks (\"...\", with \"\" for "
    "a quote inside), or pass --skip-invalid (skip_invalid=True) to skip the row."
)
_HEADER_HINT = "A SemEval-2025 Task 11 file starts with the header id,text,<label columns>."


def lang_from_file_name(path: PathLike) -> Optional[str]:
    """The language code a SemEval file name gives, if it looks like one.

    path (PathLike): e.g. "train/eng.csv".
    RETURNS (Optional[str]): e.g. "eng", or None.
    """
    stem = Path(path).stem
    return stem if LANG_RE.match(stem) else None


def iter_semeval_records(
    path: PathLike,
    *,
    context: Optional[ReadContext] = None,
    **options: Any,
) -> Iterator[Record]:
    """Stream the records of a SemEval-2025 Task 11 track A CSV file.

    path (PathLike): the file, named after its language (e.g. "eng.csv").
    context (Optional[ReadContext]): shared state of a multi-file conversion.
    options: without ``context``, the options of :class:`ReadContext`.
    YIELDS (Record): the valid records of the SemEval CSV file, in order of its rows.
    """
    context, path = ReadContext.for_file(path, context, **options)
    counts = context.report
    bad_lines: Dict[int, str] = {}
    n_lines = [0]

    def feed() -> Iterator[str]:
        for line in iter_lines(path, progress=context.progress):
            n_lines[0] = line.number
            if line.error is not None:
                bad_lines[line.number] = line.error
            yield line.raw

    reader = csv.reader(feed(), strict=True)
    file_lang = lang_from_file_name(path)
    header: Optional[List[str]] = None
    columns: List[Tuple[int, str, str]] = []  # (index, column name, canonical label)
    id_col = text_col = -1
    previous_end = 0
    rows_with_content = 0
    while True:
        try:
            row: Optional[List[str]] = next(reader)
            problem = None
        except StopIteration:
            break
        except csv.Error as err:
            row, problem = None, str(err)
        start, previous_end = previous_end + 1, reader.line_num
        bad = [number for number in range(start, previous_end + 1) if number in bad_lines]
        if header is None:
            if row is not None and not bad and _is_blank(row):
                counts.read += 1
                counts.blank += 1
                continue
            location = where(path, start)
            if bad:
                raise DataError(Errors.E032.format(where=where(path, bad[0]), detail=bad_lines[bad[0]]), path=path)
            if row is None:
                raise DataError(Errors.E035.format(where=location, problem=problem, hint=_HEADER_HINT), path=path)
            header = [name.strip() for name in row]
            try:
                id_col, text_col, columns = _read_header(header, path, start, context, file_lang)
            except DataError as err:
                err.path, err.line = err.path or str(path), err.line or start
                raise
            continue
        counts.read += 1
        if row is not None and not bad and _is_blank(row):
            counts.blank += 1
            continue
        rows_with_content += 1
        try:
            record, fell_back = _parse_row(
                row, problem, bad, bad_lines, start, path, header, id_col, text_col, columns, file_lang, context
            )
            context.accept(record, fell_back=fell_back)
        except DataError as err:
            context.fail(err, path, start)
            continue
        yield record
    if header is None or rows_with_content == 0:
        if header is not None:
            err = DataError(Errors.E033.format(path=path, detail="a header and no rows"), path=path)
        else:
            err = empty_file_error(path, n_lines[0])
        context.fail(err, path, None, counts_as_skipped=False)


def _is_blank(row: List[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _read_header(
    header: List[str], path: Path, line: int, context: ReadContext, file_lang: Optional[str]
) -> Tuple[int, int, List[Tuple[int, str, str]]]:
    shown = describe(",".join(header))

    def bad(problem: str) -> DataError:
        return DataError(Errors.E036.format(path=path, header=shown, problem=problem, hint=_HEADER_HINT), path=path)

    for required in ("id", "text"):
        if header.count(required) != 1:
            raise bad(f"it needs one '{required}' column, it has {header.count(required)}")
    seen = set()
    columns: List[Tuple[int, str, str]] = []
    lang = file_lang or context.lang or FALLBACK_LANG
    for index, name in enumerate(header):
        if name in ("id", "text"):
            continue
        problem = check_label_name(name)
        if problem is not None:
            raise bad(f"column {index + 1}: {problem}")
        name = unicodedata.normalize("NFC", name)
        if name in seen:
            raise bad(f"column '{name}' appears twice")
        seen.add(name)
        label = context.labels.resolve(name, lang, location=where(path, line), field=f"column '{name}'")
        columns.append((index, name, label))
    if not columns and context.require_labels:
        raise bad("it has no label columns (texts without labels can only be read with require_labels=False)")
    return header.index("id"), header.index("text"), columns


def _parse_row(
    row: Optional[List[str]],
    problem: Optional[str],
    bad: List[int],
    bad_lines: Dict[int, str],
    start: int,
    path: Path,
    header: List[str],
    id_col: int,
    text_col: int,
    columns: List[Tuple[int, str, str]],
    file_lang: Optional[str],
    context: ReadContext,
) -> Tuple[Record, bool]:
    location = where(path, start)
    if bad:
        raise DataError(Errors.E032.format(where=where(path, bad[0]), detail=bad_lines[bad[0]]))
    if row is None:
        if problem == "unexpected end of data":
            problem = "a quoted field is not closed before the end of the file (is the file truncated?)"
        raise DataError(Errors.E035.format(where=location, problem=problem, hint=_ROW_HINT))
    if len(row) != len(header):
        few_many = "missing" if len(row) < len(header) else "extra"
        detail = f"it has {len(row)} column(s) where the header has {len(header)} ({few_many} columns)"
        raise DataError(Errors.E035.format(where=location, problem=detail, hint=_ROW_HINT))
    text = check_text(row[text_col], location=location)
    record_id = check_id(row[id_col] or None, location=location) or f"{path.stem}:{start}"
    lang, fell_back = context.record_lang(file_lang, location=location)
    cats: Dict[str, float] = {}
    names: Dict[str, str] = {}
    for index, name, label in columns:
        cell = row[index]
        if cell == "":  # an empty cell: unknown
            continue
        if cell not in _VALUES:
            raise DataError(
                Errors.E028.format(
                    where=location,
                    field=f"column '{name}'",
                    value=describe(cell),
                    label=label,
                    unknown_hint="leave the cell empty",
                )
            )
        value = _VALUES[cell]
        if label in cats and cats[label] != value:
            detail = f" (columns '{names[label]}' and '{name}' both mean '{label}' and disagree)"
            raise DataError(Errors.E037.format(where=location, field=f"column '{name}'", key=label, detail=detail))
        cats[label] = value
        names.setdefault(label, name)
    record = Record(id=record_id, lang=lang, text=text, cats=cats, source=str(path), line=start)
    return record, fell_back
