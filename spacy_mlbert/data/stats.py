"""Label statistics per language: positives and known counts per label.

For each language, and for all languages together:

- ``texts``: the number of texts;
- per label, ``positives`` (texts where it is 1) and ``known`` (texts where it
  is 0 or 1; the rest leave it unknown);
- ``cardinality``: the mean number of positive labels per text.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import srsly
from wasabi import Printer

from ..evaluation.markdown import format_number, markdown_table
from .records import PathLike, Record


@dataclass
class LabelCounts:
    """The counts of one language (or of all)."""

    texts: int = 0
    positives: Dict[str, int] = field(default_factory=dict)
    known: Dict[str, int] = field(default_factory=dict)

    @property
    def cardinality(self) -> float:
        """RETURNS (float): mean positive labels per text (0.0 without texts)."""
        return sum(self.positives.values()) / self.texts if self.texts else 0.0

    def add(self, record: Record, labels: Sequence[str]) -> None:
        """Count one record."""
        self.texts += 1
        for label in labels:
            value = record.cats.get(label)
            if value is not None:
                self.known[label] = self.known.get(label, 0) + 1
                if value == 1.0:
                    self.positives[label] = self.positives.get(label, 0) + 1

    def to_dict(self, labels: Sequence[str]) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): the counts, every label listed."""
        return {
            "texts": self.texts,
            "cardinality": round(self.cardinality, 4),
            "labels": {
                label: {"positives": self.positives.get(label, 0), "known": self.known.get(label, 0)}
                for label in labels
            },
        }


@dataclass
class LabelStats:
    """Label counts per language and in total."""

    labels: List[str]
    languages: Dict[str, LabelCounts]
    total: LabelCounts

    def to_dict(self) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): JSON-serializable statistics."""
        return {
            "labels": list(self.labels),
            "languages": {lang: counts.to_dict(self.labels) for lang, counts in self.languages.items()},
            "total": self.total.to_dict(self.labels),
        }

    def table(self) -> Tuple[List[str], List[List[str]]]:
        """The table with one row per language and a total row.

        RETURNS (Tuple[List[str], List[List[str]]]): header and rows; label
            cells are "positives/known".
        """
        header = ["lang", "texts", "card."] + list(self.labels)
        rows = []
        items = list(self.languages.items()) + [("(all)", self.total)]
        for lang, counts in items:
            cells = [lang, str(counts.texts), format_number(counts.cardinality, 2)]
            cells += [f"{counts.positives.get(label, 0)}/{counts.known.get(label, 0)}" for label in self.labels]
            rows.append(cells)
        return header, rows

    def label_table(self) -> Tuple[List[str], List[List[str]]]:
        """The table turned round: one row per label, one column per language.

        RETURNS (Tuple[List[str], List[List[str]]]): header and rows; the
            first rows hold texts and cardinality, label cells "positives/known".
        """
        items = list(self.languages.items()) + [("(all)", self.total)]
        header = ["label"] + [lang for lang, _ in items]
        rows = [
            ["texts"] + [str(counts.texts) for _, counts in items],
            ["card."] + [format_number(counts.cardinality, 2) for _, counts in items],
        ]
        for label in self.labels:
            cells = [f"{counts.positives.get(label, 0)}/{counts.known.get(label, 0)}" for _, counts in items]
            rows.append([label] + cells)
        return header, rows

    def to_markdown(self, title: Optional[str] = None) -> str:
        """RETURNS (str): the table as Markdown (cells: positives/known)."""
        header, rows = self.table()
        lines = []
        if title:
            lines += [f"### {title}", ""]
        lines += markdown_table(header, rows)
        lines += ["", "Cells: texts where the label is 1 / texts where it is known. card.: mean labels per text."]
        return "\n".join(lines) + "\n"


class LabelStatsBuilder:
    """Counts records one at a time, for a corpus streamed past once.

    labels (Sequence[str]): the label set.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.languages: Dict[str, LabelCounts] = {}
        self.total = LabelCounts()

    def add(self, record: Record) -> None:
        """Count one finalized record."""
        self.languages.setdefault(record.lang, LabelCounts()).add(record, self.labels)
        self.total.add(record, self.labels)

    def build(self) -> LabelStats:
        """RETURNS (LabelStats): the statistics; languages sorted by code."""
        ordered = {lang: self.languages[lang] for lang in sorted(self.languages)}
        return LabelStats(list(self.labels), ordered, self.total)


def label_stats(records: Iterable[Record], labels: Optional[Sequence[str]] = None) -> LabelStats:
    """Count labels per language.

    records (Iterable[Record]): finalized records.
    labels (Optional[Sequence[str]]): the label set (default: labels seen, in order).
    RETURNS (LabelStats): the statistics; languages sorted by code.
    """
    if labels is None:
        records = list(records)
        seen: Dict[str, None] = {}
        for record in records:
            for label in record.cats:
                seen.setdefault(label, None)
        labels = list(seen)
    builder = LabelStatsBuilder(labels)
    for record in records:
        builder.add(record)
    return builder.build()


def print_label_stats(stats: LabelStats, *, title: Optional[str] = None, printer: Optional[Printer] = None) -> None:
    """Print the table with wasabi: one row per language, or per label when
    there are more labels than languages.

    stats (LabelStats): the statistics.
    title (Optional[str]): a heading.
    printer (Optional[Printer]): the printer to use.
    """
    msg = printer or Printer()
    if title:
        msg.divider(title)
    # many labels and few languages (GoEmotions): one row per label stays narrow
    header, rows = stats.label_table() if len(stats.labels) > len(stats.languages) + 2 else stats.table()
    aligns = ["l"] + ["r"] * (len(header) - 1)
    msg.table(rows, header=header, divider=True, aligns=aligns)


def save_label_stats(stats: LabelStats, output_dir: PathLike, name: str) -> Tuple[Path, Path]:
    """Write ``<name>.stats.json`` and ``<name>.stats.md``.

    stats (LabelStats): the statistics.
    output_dir (PathLike): the directory (created if needed).
    name (str): the file name stem, e.g. "train".
    RETURNS (Tuple[Path, Path]): the JSON and Markdown paths.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / f"{name}.stats.json"
    md_path = output_dir / f"{name}.stats.md"
    write_label_stats(stats, json_path, md_path, title=name)
    return json_path, md_path


def write_label_stats(stats: LabelStats, json_path: PathLike, md_path: PathLike, *, title: str) -> None:
    """Write the statistics as JSON and as Markdown to the given files
    (``convert`` passes temporary names, renamed once all outputs are done).

    stats (LabelStats): the statistics.
    json_path (PathLike): the JSON file.
    md_path (PathLike): the Markdown file.
    title (str): the Markdown table's title, e.g. "train".
    """
    srsly.write_json(json_path, stats.to_dict())
    Path(md_path).write_text(stats.to_markdown(title=title), encoding="utf-8")
