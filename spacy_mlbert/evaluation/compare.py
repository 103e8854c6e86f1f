"""Side-by-side tables of several evaluations (metrics.json files)."""
from typing import Any, List, Mapping, Optional, Sequence

from .markdown import format_number, markdown_table, undefined_note


def compare_markdown(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    """A Markdown comparison: overall figures, then macro-F1 per language and per label.

    A figure that an evaluation could not score (no annotated cell: null in
    its metrics.json) shows as '–', never as 0, and each such evaluation
    gets a note naming what it could not score.

    metrics (Sequence[Mapping[str, Any]]): Outputs of ``spacy-mlbert evaluate``.
    names (Sequence[str]): One column name per evaluation.
    RETURNS (str): The Markdown text.
    """
    lines: List[str] = ["# Comparison", ""]
    overall_keys = ("macro_f", "micro_f", "macro_p", "macro_r", "macro_auc")
    lines += markdown_table(
        ["metric", *names],
        [[key, *(format_number(_figure(m, "overall", key)) for m in metrics)] for key in overall_keys],
    )
    langs = sorted({lang for m in metrics for lang in m.get("per_language", {})})
    if langs:
        lines += ["", "## Macro-F1 per language", ""]
        lines += markdown_table(
            ["language", *names],
            [[lang, *(format_number(_figure(m, "per_language", lang, "macro_f")) for m in metrics)] for lang in langs],
        )
    labels = sorted({label for m in metrics for label in m["overall"].get("per_label", {})})
    lines += ["", "## F1 per label", ""]
    lines += markdown_table(
        ["label", *names],
        [[label, *(format_number(_figure(m, "overall", "per_label", label, "f")) for m in metrics)] for label in labels],
    )
    notes = [f"{name}: {note}" for name, note in ((n, undefined_note(m)) for n, m in zip(names, metrics)) if note]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _figure(metrics: Mapping[str, Any], *keys: str) -> Optional[float]:
    # a missing or null level anywhere on the way is an undefined figure
    value: Any = metrics
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
