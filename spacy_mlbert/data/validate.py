"""Field checks shared by the input formats, and the state of one conversion.

Every check raises a :class:`DataError` whose message names the file, the line
and the field. :class:`ReadContext` decides what happens then: raise it, or
(with skip_invalid) count the line as skipped and note the reason.
"""
import json
import logging
import math
import re
import unicodedata
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, MutableMapping, Optional, Sequence, Tuple

from ..errors import Errors
from .aliases import LabelAliases
from .labels import LabelSet, check_label_name
from .lines import Line, iter_lines
from .records import ConversionReport, DataError, Issue, PathLike, Record

logger = logging.getLogger("spacy_mlbert")

# ISO 639 codes and BCP-47-like tags: "en", "eng", "ptmz", "pt-BR", "zh_Hant".
LANG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,7}([-_][A-Za-z0-9]{1,8})*$")
# What a record without any language gets: spaCy's code for "multi-language".
FALLBACK_LANG = "xx"


def describe(value: Any) -> str:
    """RETURNS (str): a short JSON-like rendering of a value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    """RETURNS (str): the JSON type of a value, with an article: "a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def has_surrogate(text: str) -> bool:
    """RETURNS (bool): whether the string holds a lone surrogate (JSON allows "\\ud800")."""
    return any("\ud800" <= char <= "\udfff" for char in text)


def check_text(value: Any, *, location: str, present: bool = True) -> str:
    """Validate a text and normalise it to NFC.

    value (Any): the value from the data.
    location (str): "file, line N" for messages.
    present (bool): whether the field was there at all.
    RETURNS (str): the NFC-normalised text.
    """
    if not present:
        raise DataError(Errors.E023.format(where=location, problem="missing"), field="text")
    if value is None:
        raise DataError(Errors.E023.format(where=location, problem="null"), field="text")
    if not isinstance(value, str):
        raise DataError(Errors.E024.format(where=location, kind=kind_of(value), value=describe(value)), field="text")
    if not value:
        raise DataError(Errors.E025.format(where=location, problem="is empty"), field="text")
    if not value.strip():
        raise DataError(Errors.E025.format(where=location, problem="holds only whitespace"), field="text")
    if has_surrogate(value):
        problem = "holds a lone surrogate (an escape such as \\ud800 that is not a character)"
        raise DataError(Errors.E025.format(where=location, problem=problem), field="text")
    return unicodedata.normalize("NFC", value)


def check_lang(value: Any, *, location: str, field: str = "lang") -> str:
    """Validate a language code.

    value (Any): the value from the data or an option.
    location (str): where it came from, for messages.
    field (str): the field or option name.
    RETURNS (str): the code, unchanged.
    """
    if not isinstance(value, str) or not LANG_RE.match(value):
        problem = f"{describe(value)} is not a language code; use an ISO 639 code such as \"es\" or \"eng\""
        raise DataError(Errors.E049.format(where=location, field=field, problem=problem), field=field)
    return value


def check_id(value: Any, *, location: str) -> Optional[str]:
    """Validate a record id; None when there is none.

    value (Any): a string or an integer (written as a string), or None.
    location (str): "file, line N" for messages.
    RETURNS (Optional[str]): the id as a string.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        problem = f"expected a string or an integer, got {kind_of(value)} {describe(value)}"
        raise DataError(Errors.E049.format(where=location, field="id", problem=problem), field="id")
    if not value.strip():
        problem = "the id is empty; leave the field out to get the default id <file stem>:<line>"
        raise DataError(Errors.E049.format(where=location, field="id", problem=problem), field="id")
    if has_surrogate(value):
        problem = "the id holds a lone surrogate (invalid Unicode)"
        raise DataError(Errors.E049.format(where=location, field="id", problem=problem), field="id")
    return value


def check_binary(value: Any, *, label: str, location: str, field: str, unknown_hint: str) -> float:
    """Validate a 0/1 label value; booleans, NaN, strings and 0.5 are refused.

    value (Any): the value from the data.
    label (str): the label, for the message.
    location (str): "file, line N" for messages.
    field (str): e.g. "field 'cats'" or "column 'anger'".
    unknown_hint (str): how to mark the label unknown in this format.
    RETURNS (float): 1.0 or 0.0.
    """
    # bool is a subclass of int: true/false would pass as 1/0 otherwise
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (isinstance(value, float) and math.isnan(value)) and value in (0, 1):
            return float(value)
    raise DataError(
        Errors.E028.format(where=location, field=field, value=describe(value), label=label, unknown_hint=unknown_hint),
        field=field,
    )


class ReadContext:
    """Options and state shared by all files of one conversion.

    It holds the label set, the ids seen so far and the report, and turns a
    DataError into a skipped line when skip_invalid is set.
    """

    def __init__(
        self,
        *,
        aliases: Optional[LabelAliases] = None,
        label_set: Optional[Sequence[str]] = None,
        add_labels: bool = False,
        skip_invalid: bool = False,
        lang: Optional[str] = None,
        require_labels: bool = True,
        report: Optional[ConversionReport] = None,
        progress: bool = False,
        ids: Optional[MutableMapping[str, str]] = None,
    ) -> None:
        """Set up one conversion; see :func:`spacy_mlbert.data.read_records` for
        the options. ``ids`` holds the ids seen (id -> location), a dict by
        default; streaming conversion passes a smaller stand-in."""
        self.labels = LabelSet(label_set, add_labels=add_labels, aliases=aliases)
        self.skip_invalid = skip_invalid
        self.lang = check_lang(lang, location="option --lang (lang=...)", field="lang") if lang is not None else None
        self.require_labels = require_labels
        self.report = report if report is not None else ConversionReport()
        self.progress = progress
        self.ids: MutableMapping[str, str] = ids if ids is not None else {}

    def record_lang(self, data_lang: Any, *, location: str, default: Optional[str] = None) -> Tuple[str, bool]:
        """The language of a record.

        data_lang (Any): the language the data names (None when it names none).
        location (str): "file, line N" for messages.
        default (Optional[str]): the format's own default (e.g. "en" for GoEmotions).
        RETURNS (Tuple[str, bool]): the code (the data's, else the ``lang``
            option, else ``default``, else "xx") and whether it fell back to "xx".
        """
        if data_lang is not None:
            return check_lang(data_lang, location=location), False
        if self.lang is not None:
            return self.lang, False
        if default is not None:
            return default, False
        return FALLBACK_LANG, True

    @classmethod
    def for_file(cls, path: PathLike, context: Optional["ReadContext"], **options) -> Tuple["ReadContext", Path]:
        """The context to read one file with (``context``, or a new one made of
        ``options`` when it is None), after checking the file and noting it.

        RETURNS (Tuple[ReadContext, Path]): The context and the path.
        """
        if context is None:
            context = cls(**options)
        path = Path(path)
        check_input_file(path)
        context.start_file(path)
        return context, path

    def start_file(self, path: PathLike) -> None:
        """Note a new input file in the report."""
        self.report.files.append(str(path))

    def fail(self, err: DataError, path: PathLike, line: Optional[int], *, counts_as_skipped: bool = True) -> None:
        """Raise the error, or note it and go on when skipping invalid records.

        err (DataError): the problem.
        path (PathLike): the file.
        line (Optional[int]): the line, None for a whole-file problem.
        counts_as_skipped (bool): whether a line of input is lost (vs. a file note).
        """
        if err.path is None:
            err.path = str(path)
        if err.line is None:
            err.line = line
        if not self.skip_invalid:
            raise err
        logger.debug("skipped %s line %s: %s", path, line, err)
        self.report.issues.append(Issue(str(path), line, err.code, str(err)))
        if counts_as_skipped:
            self.report.skipped += 1

    def resolve_positives(
        self, names: Iterable[str], lang: str, *, location: str, field: str = "labels"
    ) -> Dict[str, float]:
        """Canonical labels for a list of labels that apply.

        names (Iterable[str]): valid label names (a name given twice counts once).
        lang (str): the record's language, for the aliases.
        location (str): "file, line N" for messages.
        field (str): the field name for messages.
        RETURNS (Dict[str, float]): label -> 1.0.
        """
        cats: Dict[str, float] = {}
        for name in names:
            label = self.labels.resolve(name, lang, location=location, field=f"field '{field}'")
            cats[label] = 1.0
        return cats

    def resolve_values(
        self, values: Mapping[str, float], lang: str, *, location: str, field: str
    ) -> Dict[str, float]:
        """Canonical labels for explicit values; two names of one label must agree.

        values (Mapping[str, float]): label name -> 0.0/1.0.
        lang (str): the record's language, for the aliases.
        location (str): "file, line N" for messages.
        field (str): e.g. "field 'cats'" for messages.
        RETURNS (Dict[str, float]): canonical label -> value.
        """
        cats: Dict[str, float] = {}
        names: Dict[str, str] = {}
        for name, value in values.items():
            label = self.labels.resolve(name, lang, location=location, field=field)
            if label in cats and cats[label] != value:
                detail = f" (as '{names[label]}' = {cats[label]:g} and '{name}' = {value:g}, both meaning '{label}')"
                raise DataError(
                    Errors.E037.format(where=location, field=field, key=label, detail=detail),
                    field=field,
                )
            cats[label] = value
            names.setdefault(label, name)
        return cats

    def read_lines(self, path: Path, parse: Callable[[Line], Tuple[Record, bool]]) -> Iterator[Record]:
        """The records of a file with one record per line (JSONL, TSV).

        Counts every line, skips blank ones, and accepts each parsed record or
        fails (raises, or skips with skip_invalid) with its line number; a
        file without content is an error of its own.

        path (Path): the file.
        parse (Callable[[Line], Tuple[Record, bool]]): a line to its record and
            whether its language fell back to "xx"; raises DataError.
        YIELDS (Record): the accepted records, in line order.
        """
        lines_seen = content_lines = 0
        for line in iter_lines(path, progress=self.progress):
            lines_seen += 1
            self.report.read += 1
            if line.error is None and line.is_blank:
                self.report.blank += 1
                continue
            content_lines += 1
            try:
                record, fell_back = parse(line)
                self.accept(record, fell_back=fell_back)
            except DataError as err:
                self.fail(err, path, line.number)
                continue
            yield record
        if content_lines == 0:
            self.fail(empty_file_error(path, lines_seen), path, None, counts_as_skipped=False)

    def accept(self, record: Record, *, fell_back: bool = False) -> Record:
        """Check the id, then commit the record's labels and id and count it.

        record (Record): a record whose fields are valid.
        fell_back (bool): whether the record got the fallback language "xx".
        RETURNS (Record): the record, finalized when the label set is fixed.
        """
        first = self.ids.get(record.id)
        if first is not None:
            raise DataError(Errors.E034.format(where=record.location, id=record.id, first=first), field="id")
        self.ids[record.id] = record.location
        self.labels.commit(record.cats)
        if record.complete and self.labels.is_fixed:
            record.finalize(self.labels.labels)
        self.report.converted += 1
        if fell_back:
            self.report.default_lang += 1
        self.report.langs[record.lang] = self.report.langs.get(record.lang, 0) + 1
        return record

    def finish(self) -> List[str]:
        """Copy the label set into the report.

        RETURNS (List[str]): the final labels.
        """
        self.report.labels = list(self.labels.labels)
        self.report.added_labels = list(self.labels.added)
        return self.report.labels


def label_names(value: Any, *, location: str, field: str) -> List[str]:
    """Validate a list of label names and NFC-normalise them.

    value (Any): the value from the data.
    location (str): "file, line N" for messages.
    field (str): the field name.
    RETURNS (List[str]): the names.
    """
    if not isinstance(value, list):
        problem = f"expected a list of label names, got {kind_of(value)} {describe(value)}"
        raise DataError(Errors.E026.format(where=location, field=field, problem=problem), field=field)
    names = []
    for item in value:
        problem = check_label_name(item)
        if problem is not None:
            raise DataError(Errors.E026.format(where=location, field=field, problem=problem), field=field)
        names.append(unicodedata.normalize("NFC", item))
    return names


def check_input_file(path: PathLike) -> None:
    """Raise E046 unless the path is a readable file.

    path (PathLike): an input file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(Errors.E046.format(path=path, problem="does not exist"), path=path)
    if not path.is_file():
        raise DataError(Errors.E046.format(path=path, problem="is not a file"), path=path)
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise DataError(Errors.E046.format(path=path, problem=f"cannot be read ({err.strerror})"), path=path) from None


def empty_file_error(path: PathLike, lines: int) -> DataError:
    """RETURNS (DataError): E033 for a file with no content."""
    if lines:
        detail = f"{lines} blank line(s) and nothing else"
    else:
        detail = "0 bytes" if Path(path).stat().st_size == 0 else "nothing but a byte order mark"
    return DataError(Errors.E033.format(path=path, detail=detail), path=path)
