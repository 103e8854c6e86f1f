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
import math
import unicodedata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import Errors
from .lines import Line
from .records import DataError, PathLike, Record, where
from .validate import (
    ReadContext,
    check_binary,
    check_id,
    check_text,
    kind_of,
    label_names,
)
from .labels import check_label_name

RECORD_FIELDS = ("id", "lang", "text", "labels", "cats")


def iter_jsonl_records(
    path: PathLike,
    *,
    context: Optional[ReadContext] = None,
    **options: Any,
) -> Iterator[Record]:
    """Stream the records of a JSONL file, validating each line.

    A record that lists its labels (``labels``) is yielded with only its
    positives in ``cats`` unless the label set is fixed (``label_set`` given,
    no ``add_labels``); call ``record.finalize(labels)`` once the label set is
    known, or use :func:`spacy_mlbert.data.read_records`, which does that.

    path (PathLike): the file.
    context (Optional[ReadContext]): shared state of a multi-file conversion.
    options: without ``context``, the options of :class:`ReadContext`.
    YIELDS (Record): the valid records of the JSONL file, in order of its lines.
    """
    context, path = ReadContext.for_file(path, context, **options)
    yield from context.read_lines(path, lambda line: _parse_line(line, path, context))


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


class _NotFinite(ValueError):
    """A number that JSON cannot hold: NaN, Infinity or one too large for a float."""


def _finite_constant(token: str) -> float:
    raise _NotFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):  # e.g. 1e400
        raise _NotFinite(token)
    return value


def load_object(text: str, location: str, *, truncated: bool, finite: bool = False) -> Dict[str, Any]:
    """Parse one JSONL line that must hold an object, as the converter does.

    Also used by ``annotate`` (spacy_mlbert.annotate.util), so that both
    refuse the same lines with the same messages.

    text (str): The line, decoded.
    location (str): File and line, for the messages.
    truncated (bool): The line is the last one and has no newline (E021
        instead of E020 for invalid JSON).
    finite (bool): Refuse NaN, Infinity, -Infinity and numbers too large for
        a float (E180): values that could not be written back as JSON.
    RETURNS (Dict[str, Any]): The object.
    RAISES (DataError): Invalid JSON, not an object, a key given twice (E037).
    """
    repeats = _Repeats()
    hooks: Dict[str, Any] = {"parse_constant": _finite_constant, "parse_float": _finite_float} if finite else {}
    try:
        value = json.loads(text, object_pairs_hook=repeats, **hooks)
    except RecursionError:
        raise DataError(Errors.E020.format(where=location, detail="nested too deeply")) from None
    except _NotFinite as err:
        raise DataError(Errors.E180.format(where=location, value=err)) from None
    except ValueError as err:  # JSONDecodeError, or an integer too long to read
        detail = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)
        template = Errors.E021 if truncated else Errors.E020
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
    return value


def _parse_line(line: Line, path: Path, context: ReadContext) -> Tuple[Record, bool]:
    location = where(path, line.number)
    if line.error is not None:
        raise DataError(Errors.E032.format(where=location, detail=line.error))
    value = load_object(line.text, location, truncated=line.ending == "")
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

