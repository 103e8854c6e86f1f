"""The data model of the converter: records, the error class and the report.

A :class:`Record` is one text with the labels known for it. ``cats`` holds only
the labels whose value is known (1.0 or 0.0); a label missing from ``cats`` is
unknown for that text, and spaCy treats it as missing when training.
"""
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

PathLike = Union[str, Path]

# The code at the start of a coded message, e.g. "[E020] ...".
_CODE_RE = re.compile(r"^\[([EW]\d{3})\]")


class DataError(ValueError):
    """A problem in the input data, with a coded message naming file and line.

    The message says what is wrong and what to do; the CLI prints it without a
    traceback. ``code``, ``path``, ``line`` and ``field`` are there for
    programs that want to react to the error.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[PathLike] = None,
        line: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        match = _CODE_RE.match(message)
        self.code: Optional[str] = match.group(1) if match else None
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field


def where(path: PathLike, line: Optional[int] = None, field: Optional[str] = None) -> str:
    """Format a location for a message: "data.jsonl, line 3, field 'text'".

    path (PathLike): the input file.
    line (Optional[int]): the 1-based line number, if any.
    field (Optional[str]): the field name, if any.
    RETURNS (str): the location.
    """
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if field is not None:
        parts.append(f"field '{field}'")
    return ", ".join(parts)


@dataclass
class Record:
    """One text with its known labels.

    id (str): the record id, unique across the inputs of one conversion.
    lang (str): the language code of the text.
    text (str): the text, NFC-normalised.
    cats (Dict[str, float]): known labels only, 1.0 (applies) or 0.0 (does not).
    complete (bool): True when the source listed the labels that apply
        (a JSONL ``labels`` list): every label of the final label set that is
        not in ``cats`` is then 0.0. :meth:`finalize` fills those in.
    source (str): the file the record came from.
    line (int): the 1-based line (or CSV row start line) in ``source``.
    meta (Dict[str, Any]): other fields of the source record, kept as they were.
    """

    id: str
    lang: str
    text: str
    cats: Dict[str, float]
    complete: bool = False
    source: str = ""
    line: int = 0
    meta: Dict[str, Any] = field(default_factory=dict)

    def known_cats(self, labels: Optional[Sequence[str]] = None) -> Dict[str, float]:
        """The known labels with their values, in label-set order.

        labels (Optional[Sequence[str]]): the label set; needed to fill in the
            negatives of a complete record that was not finalized yet.
        RETURNS (Dict[str, float]): label -> 1.0 / 0.0, known labels only.
        """
        if labels is None:
            return dict(self.cats)
        if self.complete:
            return {label: self.cats.get(label, 0.0) for label in labels}
        # keep labels outside the given set too, so that nothing is lost
        ordered = {label: self.cats[label] for label in labels if label in self.cats}
        ordered.update(self.cats)
        return ordered

    def finalize(self, labels: Sequence[str]) -> None:
        """Fill in the negatives of a complete record for the final label set.

        labels (Sequence[str]): the final label set.
        """
        self.cats = self.known_cats(labels)

    @property
    def location(self) -> str:
        """RETURNS (str): "file, line N" of the record's source."""
        return where(self.source, self.line)


@dataclass
class Issue:
    """A skipped line (or file) with the reason, for the report."""

    source: str
    line: Optional[int]
    code: Optional[str]
    message: str


@dataclass
class DuplicateText:
    """A record removed because an earlier record has exactly the same text."""

    removed: str  # location of the removed record
    kept: str  # location of the record that was kept
    removed_id: str
    kept_id: str
    same_labels: bool


@dataclass
class ConversionReport:
    """Counts and issues of one conversion. The counts always add up:

    ``read == blank + converted + skipped + duplicates_removed``

    read (int): lines read (JSONL, TSV) or rows read (CSV, header excluded).
    blank (int): blank lines (nothing but whitespace), ignored.
    converted (int): records converted (and kept after duplicate removal).
    skipped (int): invalid records skipped (only with skip_invalid).
    duplicates_removed (int): records removed as exact duplicate texts.
    """

    files: List[str] = field(default_factory=list)
    read: int = 0
    blank: int = 0
    converted: int = 0
    skipped: int = 0
    duplicates_removed: int = 0
    issues: List[Issue] = field(default_factory=list)
    duplicates: List[DuplicateText] = field(default_factory=list)
    labels: List[str] = field(default_factory=list)
    added_labels: List[str] = field(default_factory=list)
    default_lang: int = 0  # records that got the fallback language
    langs: Dict[str, int] = field(default_factory=dict)

    @property
    def counts_add_up(self) -> bool:
        """RETURNS (bool): whether read == blank + converted + skipped + duplicates_removed."""
        total = self.blank + self.converted + self.skipped + self.duplicates_removed
        return self.read == total

    def note_duplicates_removed(self, duplicates: Iterable[DuplicateText]) -> None:
        """Move records removed as duplicate texts from 'converted' to 'duplicates_removed'.

        duplicates (Iterable[DuplicateText]): the removed records.
        """
        for dup in duplicates:
            self.duplicates.append(dup)
            self.duplicates_removed += 1
            self.converted -= 1

    def summary(self) -> str:
        """RETURNS (str): one line with all counts."""
        parts = [
            f"{self.read} line(s) from {len(self.files)} file(s): {self.converted} converted",
            f"{self.skipped} skipped",
            f"{self.blank} blank",
        ]
        if self.duplicates_removed:
            parts.append(f"{self.duplicates_removed} duplicate text(s) removed")
        return ", ".join(parts)

    def to_dict(self) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): the report as JSON-serializable data."""
        data = asdict(self)
        data["counts_add_up"] = self.counts_add_up
        return data
