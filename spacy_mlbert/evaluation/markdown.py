"""Markdown helpers shared by the evaluation report, comparisons and label statistics."""
import math
from typing import Any, List, Sequence


def format_number(value: Any) -> str:
    """Three decimals; '–' for a value that is undefined (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """A Markdown table, first column left-aligned and the others right-aligned.

    header (Sequence[str]): Column titles.
    rows (Sequence[Sequence[str]]): Cell texts.
    RETURNS (List[str]): The table's lines.
    """
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _cell(text: Any) -> str:
    # a pipe or newline in a label would break the table
    return str(text).replace("|", "\\|").replace("\n", " ")
