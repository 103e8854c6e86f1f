"""The one renderer of metric dicts: numbers, Markdown tables, and the
overall and per-label tables that the report, the model card, comparisons,
label statistics and the commands show.

The tables are (header, rows) of cell texts, so the same table goes to
Markdown (:func:`markdown_table`, wasabi's MarkdownRenderer) or to the
terminal (``wasabi.msg.table``).
"""
import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from wasabi import MarkdownRenderer

# a value that is undefined (None or NaN), e.g. the AUC of a label with one class
UNDEFINED = "–"
DIGITS = 3

Table = Tuple[List[str], List[List[str]]]

OVERALL_METRICS = (
    ("Micro precision", "micro_p"),
    ("Micro recall", "micro_r"),
    ("Micro F1", "micro_f"),
    ("Macro precision", "macro_p"),
    ("Macro recall", "macro_r"),
    ("Macro F1", "macro_f"),
    ("Macro ROC AUC", "macro_auc"),
)


def format_number(value: Any, digits: int = DIGITS) -> str:
    """A figure with ``digits`` decimals; '–' for a value that is undefined (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNDEFINED
    return f"{value:.{digits}f}"


def not_annotated(metrics: Mapping[str, Any]) -> List[str]:
    """What has no annotated cell, so that its figures are undefined ('–',
    null in JSON) rather than 0: languages whose texts annotate no label,
    then labels that no text annotates.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics (or a
        metrics.json written by ``evaluate``).
    RETURNS (List[str]): e.g. ["lang xx", "label disgust"].
    """
    # a scope with an annotated cell always has its micro F1
    langs = [f"lang {lang}" for lang, scores in metrics.get("per_language", {}).items() if (scores or {}).get("micro_f") is None]
    per_label = (metrics.get("overall") or {}).get("per_label") or {}
    return langs + [f"label {label}" for label in metrics.get("labels", []) if per_label.get(label) is None]


def undefined_note(metrics: Mapping[str, Any]) -> Optional[str]:
    """The one-line note under a table with undefined figures, or None.

    metrics (Mapping[str, Any]): See not_annotated.
    RETURNS (Optional[str]): e.g. "No annotated cell for: lang xx, label disgust ('–': undefined, not 0)."
    """
    names = not_annotated(metrics)
    if not names:
        return None
    return f"No annotated cell for: {', '.join(names)} ({UNDEFINED}: undefined, not 0)."


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], aligns: Optional[Sequence[str]] = None
) -> List[str]:
    """A Markdown table, by default first column left-aligned and the others right-aligned.

    header (Sequence[str]): Column titles.
    rows (Sequence[Sequence[Any]]): Cell texts.
    aligns (Optional[Sequence[str]]): "l", "r" or "c" per column.
    RETURNS (List[str]): The table's lines.
    """
    if aligns is None:
        aligns = ["l"] + ["r"] * (len(header) - 1)
    data = [[_cell(c) for c in row] for row in rows]
    table = MarkdownRenderer().table(data, [_cell(h) for h in header], aligns=tuple(aligns))
    return table.splitlines()


def _cell(text: Any) -> str:
    # a pipe or newline in a label would break the table
    return str(text).replace("|", "\\|").replace("\n", " ")


def overall_table(overall: Mapping[str, Any]) -> Table:
    """Micro and macro precision, recall, F1 and macro ROC AUC.

    overall (Mapping[str, Any]): From metrics.multilabel_scores.
    RETURNS (Table): header and rows.
    """
    return ["Metric", "Value"], [[name, format_number(overall.get(key))] for name, key in OVERALL_METRICS]


def per_label_table(metrics: Mapping[str, Any], *, with_ece: bool = False) -> Table:
    """Threshold, P, R, F1, ROC AUC, optionally the calibration error,
    positives and annotated documents per label.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics.
    with_ece (bool): Add an ECE column and a macro row, where metrics have it
        (the console; the Markdown report has its own calibration section).
    RETURNS (Table): header and rows; '–' for a label with no annotation.
    """
    ece = (metrics.get("ece") or {}) if with_ece else {}
    ece_columns = ["ECE"] if ece else []
    header = ["Label", "Threshold", "Precision", "Recall", "F1", "ROC AUC"] + ece_columns + ["Positives", "Annotated"]
    rows = []
    for label in metrics["labels"]:
        values = metrics["overall"]["per_label"].get(label)
        threshold = format_number(metrics["thresholds"].get(label))
        if values is None:
            rows.append([label, threshold] + [UNDEFINED] * (len(header) - 2))
            continue
        rows.append(
            [label, threshold]
            + [format_number(values[k]) for k in ("p", "r", "f", "auc")]
            + [format_number(ece.get("per_label", {}).get(label)) for _ in ece_columns]
            + [str(values["support"]), str(values["n_known"])]
        )
    if ece:
        rows.append(["macro", ""] + [""] * 4 + [format_number(ece.get("macro"))] + ["", ""])
    return header, rows


def per_language_table(metrics: Mapping[str, Any]) -> Table:
    """Documents, micro P/R/F1, macro F1 and macro ROC AUC per language.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics.
    RETURNS (Table): header and rows.
    """
    keys = ("micro_p", "micro_r", "micro_f", "macro_f", "macro_auc")
    header = ["Language", "Docs", "Micro P", "Micro R", "Micro F1", "Macro F1", "Macro AUC"]
    rows = [
        [lang, str(scores["n_docs"])] + [format_number(scores.get(k)) for k in keys]
        for lang, scores in metrics["per_language"].items()
    ]
    return header, rows
