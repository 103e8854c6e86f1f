"""Side-by-side tables of several evaluations (metrics.json files)."""
from typing import Any, List, Mapping, Sequence

from .markdown import format_number, markdown_table


def compare_markdown(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    """A Markdown comparison: overall figures, then macro-F1 per language and per label.

    metrics (Sequence[Mapping[str, Any]]): Outputs of ``spacy-mlbert evaluate``.
    names (Sequence[str]): One column name per evaluation.
    RETURNS (str): The Markdown text.
    """
    lines: List[str] = ["# Comparison", ""]
    overall_keys = ("macro_f", "micro_f", "macro_p", "macro_r", "macro_auc")
    lines += markdown_table(
        ["metric", *names],
        [[key, *(format_number(m["overall"].get(key)) for m in metrics)] for key in overall_keys],
    )
    langs = sorted({lang for m in metrics for lang in m.get("per_language", {})})
    if langs:
        lines += ["", "## Macro-F1 per language", ""]
        lines += markdown_table(
            ["language", *names],
            [
                [lang, *(format_number(m.get("per_language", {}).get(lang, {}).get("macro_f")) for m in metrics)]
                for lang in langs
            ],
        )
    labels = sorted({label for m in metrics for label in m["overall"].get("per_label", {})})
    lines += ["", "## F1 per label", ""]
    lines += markdown_table(
        ["label", *names],
        [
            [label, *(format_number(m["overall"].get("per_label", {}).get(label, {}).get("f")) for m in metrics)]
            for label in labels
        ],
    )
    return "\n".join(lines) + "\n"
