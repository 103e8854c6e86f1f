"""GoEmotions TSV: ``text<TAB>comma-separated label ids<TAB>id``, no header.

- The label names come from a separate labels file (``labels.txt``): line n
  holds the name of label id n-1.
- Every label of the labels file is known for every text: 1 if its id is
  listed, else 0. Labels of a wider label set that the labels file lacks are
  unknown. Aliases may merge several GoEmotions labels into one (e.g. to
  Ekman's six emotions); the merged label is 1 if any of its sources is.
- The language is the ``lang`` option, else "en" (GoEmotions is English).
- Lines split at tabs only; the text is the first column, kept as it is.
"""
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from ..errors import Errors
from .labels import check_label_name
from .lines import Line, iter_lines
from .records import DataError, PathLike, Record, where
from .validate import ReadContext, check_id, check_text, describe

GOEMOTIONS_LANG = "en"


def load_goemotions_labels(path: PathLike) -> List[str]:
    """Read a GoEmotions labels file: one name per line, line n = label id n-1.

    Blank lines at the end are ignored; a blank line before the last name would
    shift the ids and is an error.

    path (PathLike): the labels file.
    RETURNS (List[str]): the names, index = label id, NFC-normalised.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(Errors.E043.format(where=path, problem="the file does not exist"), path=path)
    lines = list(iter_lines(path))
    while lines and lines[-1].error is None and lines[-1].is_blank:
        lines.pop()
    names: List[str] = []
    for line in lines:
        location = where(path, line.number)
        if line.error is not None:
            raise DataError(Errors.E032.format(where=location, detail=line.error), path=path, line=line.number)
        name = line.text.strip()
        problem = check_label_name(name) if name else "a blank line before the last label would shift the ids"
        if problem is not None:
            raise DataError(Errors.E043.format(where=location, problem=problem), path=path, line=line.number)
        name = unicodedata.normalize("NFC", name)
        if name in names:
            problem = f"'{name}' is listed twice (first at line {names.index(name) + 1})"
            raise DataError(Errors.E043.format(where=location, problem=problem), path=path, line=line.number)
        names.append(name)
    if not names:
        raise DataError(Errors.E043.format(where=path, problem="it names no label"), path=path)
    return names


def iter_goemotions_records(
    path: PathLike,
    labels: Sequence[str],
    *,
    context: Optional[ReadContext] = None,
    **options: Any,
) -> Iterator[Record]:
    """Stream the records of a GoEmotions TSV file.

    path (PathLike): the TSV file.
    labels (Sequence[str]): the label names by id (see :func:`load_goemotions_labels`).
    context (Optional[ReadContext]): shared state of a multi-file conversion.
    options: without ``context``, the options of :class:`ReadContext`.
    YIELDS (Record): the valid records of the GoEmotions TSV file, in order of its lines.
    """
    context, path = ReadContext.for_file(path, context, **options)
    file_lang = context.lang or GOEMOTIONS_LANG
    # The label set check is one for the file: a label outside it is not a
    # problem of one line.
    try:
        canonical = [
            context.labels.resolve(name, file_lang, location=str(path), field=f"label '{name}' of the labels file")
            for name in labels
        ]
    except DataError as err:
        err.path = str(path)
        raise
    yield from context.read_lines(path, lambda line: (_parse_line(line, path, file_lang, canonical), False))


def _parse_line(line: Line, path: Path, lang: str, canonical: List[str]) -> Record:
    location = where(path, line.number)
    if line.error is not None:
        raise DataError(Errors.E032.format(where=location, detail=line.error))
    parts = line.text.split("\t")
    if len(parts) != 3:
        problem = f"it has {len(parts)} tab-separated column(s); GoEmotions rows have 3: text, label ids, id"
        hint = "Check that the file is a GoEmotions TSV (or pass --format), or pass --skip-invalid."
        raise DataError(Errors.E035.format(where=location, problem=problem, hint=hint))
    raw_text, raw_ids, raw_id = parts
    text = check_text(raw_text, location=location)
    ids = _label_ids(raw_ids, location, len(canonical))
    cats: Dict[str, float] = {label: 0.0 for label in canonical}
    for label_id in ids:
        cats[canonical[label_id]] = 1.0
    record_id = check_id(raw_id or None, location=location) or f"{path.stem}:{line.number}"
    return Record(id=record_id, lang=lang, text=text, cats=cats, source=str(path), line=line.number)


def _label_ids(raw: str, location: str, n_labels: int) -> List[int]:
    def bad(problem: str) -> DataError:
        return DataError(Errors.E041.format(where=location, problem=problem, max_id=n_labels - 1), field="labels")

    if not raw.strip():
        raise bad("no label id (every GoEmotions text has at least one, 'neutral' included)")
    ids: List[int] = []
    for item in raw.split(","):
        # str.isdigit accepts other scripts' digits; the ids are ASCII
        if not item or not all("0" <= char <= "9" for char in item):
            raise bad(f"{describe(item)} is not a label id")
        value = int(item)
        if value >= n_labels:
            raise bad(f"label id {value} is out of range")
        ids.append(value)
    return ids

