"""JSONL input: one JSON object per line.

::

    {"id": "r-17", "lang": "es", "text": "Es muy bueno.", "labels": ["positive"]}
    {"id": "r-18", "lang": "en", "text": "Slow.", "cats": {"positive": 0, "slow": 1}}

- ``labels``: the labels that apply; every other label of the label set is 0.
- ``cats``: explicit 0/1 values; labels not listed are unknown for the text.
- ``id`` (string or integer) and ``lang`` are optional; a null value counts as
  absent, for ``labels`` and ``cats`` too.
- Other fields are kept in ``Record.meta`` (and in the DocBin's user data).
"""
import json
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import Errors
from .aliases import LabelAliases
from .lines import Line, iter_lines
from .records import ConversionReport, DataError, PathLike, Record, where
from .validate import (
    ReadContext,
    check_binary,
    check_id,
    check_text,
    empty_file_error,
    kind_of,
    label_names,
)
from .labels import check_label_name

RECORD_FIELDS = ("id", "lang", "text", "labels", "cats")


def iter_jsonl_records(
    path: PathLike,
    *,
    aliases: Optional[LabelAliases] = None,
    label_set: Optional[Sequence[str]] = None,
    add_labels: bool = False,
    skip_invalid: bool = False,
    lang: Optional[str] = None,
    require_labels: bool = True,
    report: Optional[ConversionReport] = None,
    progress: bool = False,
    context: Optional[ReadContext] = None,
) -> Iterator[Record]:
    """Stream the records of a JSONL file, validating each line.

    A record that lists its labels (``labels``) is yielded with only its
    positives in ``cats`` unless the label set is fixed (``label_set`` given,
    no ``add_labels``); call ``record.finalize(labels)`` once the label set is
    known, or use :func:`spacy_mlbert.data.read_records`, which does that.

    path (PathLike): the file.
    aliases (Optional[LabelAliases]): per-language label names.
    label_set (Optional[Sequence[str]]): the canonical labels; None infers them.
    add_labels (bool): add labels outside ``label_set`` instead of erroring.
    skip_invalid (bool): skip invalid lines (noted in the report) instead of raising.
    lang (Optional[str]): the language of records that name none (else "xx").
    require_labels (bool): False accepts records with neither labels nor cats
        (texts to annotate); they get no known label.
    report (Optional[ConversionReport]): a report to add the counts to.
    progress (bool): show a progress bar for large files on a terminal.
    context (Optional[ReadContext]): shared state of a multi-file conversion;
        when given, the other options are taken from it.
    YIELDS (Record): the valid records in file order.
    """
    context, path = ReadContext.for_file(
        path,
        context,
        aliases=aliases,
        label_set=label_set,
        add_labels=add_labels,
        skip_invalid=skip_invalid,
        lang=lang,
        require_labels=require_labels,
        report=report,
        progress=progress,
    )
    counts = context.report
    lines_seen = 0
    content_lines = 0
    for line in iter_lines(path, progress=context.progress):
        lines_seen += 1
        counts.read += 1
        if line.error is None and line.is_blank:
            counts.blank += 1
            continue
        content_lines += 1
        try:
            record, fell_back = _parse_line(line, path, context)
            context.accept(record, fell_back=fell_back)
        except DataError as err:
            context.fail(err, path, line.number)
            continue
        yield record
    if content_lines == 0:
        context.fail(empty_file_error(path, lines_seen), path, None, counts_as_skipped=False)


class _Repeats:
    """object_pairs_hook that notes keys given twice in one object (JSON keeps the last)."""

    def __init__(self) -> None:
        self.found: List[Tuple[Dict[str, Any], str]] = []

    def __call__(self, pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        result: Dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                self.found.append((result, key))
            result[key] = value
        return result


def _parse_line(line: Line, path: Path, context: ReadContext) -> Tuple[Record, bool]:
    location = where(path, line.number)
    if line.error is not None:
        raise DataError(Errors.E032.format(where=location, detail=line.error))
    repeats = _Repeats()
    try:
        value = json.loads(line.text, object_pairs_hook=repeats)
    except RecursionError:
        raise DataError(Errors.E020.format(where=location, detail="nested too deeply")) from None
    except ValueError as err:  # JSONDecodeError, or an integer too long to read
        detail = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)
        template = Errors.E021 if line.ending == "" else Errors.E020
        raise DataError(template.format(where=location, detail=detail)) from None
    if not isinstance(value, dict):
        raise DataError(Errors.E022.format(where=location, kind=kind_of(value).split(" ", 1)[-1]))
    if repeats.found:
        obj, key = repeats.found[0]
        if obj is value:
            field = "the record"
        else:
            parent = next((k for k, v in value.items() if v is obj), None)
            field = f"field '{parent}'" if parent is not None else "a nested object"
        raise DataError(Errors.E037.format(where=location, field=field, key=key, detail=""))
    text = check_text(value.get("text"), location=location, present="text" in value)
    record_id = check_id(value.get("id"), location=location) or f"{path.stem}:{line.number}"
    lang, fell_back = context.record_lang(value.get("lang"), location=location)
    labels = value.get("labels")
    cats = value.get("cats")
    if labels is not None and cats is not None:
        raise DataError(Errors.E029.format(where=location))
    if labels is not None:
        names = label_names(labels, location=location, field="labels")
        known = context.resolve_positives(names, lang, location=location)
        complete = True
    elif cats is not None:
        known = _check_cats(cats, lang, location, context)
        complete = False
    elif context.require_labels:
        raise DataError(Errors.E030.format(where=location))
    else:
        known, complete = {}, False
    meta = {key: item for key, item in value.items() if key not in RECORD_FIELDS}
    record = Record(
        id=record_id,
        lang=lang,
        text=text,
        cats=known,
        complete=complete,
        source=str(path),
        line=line.number,
        meta=meta,
    )
    return record, fell_back


def _check_cats(cats: Any, lang: str, location: str, context: ReadContext) -> Dict[str, float]:
    if not isinstance(cats, dict):
        raise DataError(Errors.E027.format(where=location, kind=kind_of(cats)), field="cats")
    values: Dict[str, float] = {}
    for name, raw in cats.items():
        problem = check_label_name(name)
        if problem is not None:
            raise DataError(Errors.E049.format(where=location, field="cats", problem=problem), field="cats")
        value = check_binary(
            raw,
            label=name,
            location=location,
            field="field 'cats'",
            unknown_hint="leave the label out of 'cats'",
        )
        name = unicodedata.normalize("NFC", name)
        if name in values and values[name] != value:
            detail = " (in two spellings that are equal after NFC normalisation, with different values)"
            raise DataError(Errors.E037.format(where=location, field="field 'cats'", key=name, detail=detail))
        values[name] = value
    return context.resolve_values(values, lang, location=location, field="field 'cats'")

