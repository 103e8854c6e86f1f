"""Side-by-side tables of several evaluations (metrics.json files)."""
from typing import Any, List, Mapping, Sequence


def compare_markdown(metrics: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    """A Markdown comparison: overall figures, then macro-F1 per language and per label.

    metrics (Sequence[Mapping[str, Any]]): Outputs of ``spacy-mlbert evaluate``.
    names (Sequence[str]): One column name per evaluation.
    RETURNS (str): The Markdown text.
    """
    lines: List[str] = ["# Comparison", ""]
    overall_keys = ("macro_f", "micro_f", "macro_p", "macro_r", "macro_auc")
    lines += _table(
        ["metric", *names],
        [[key, *(_num(m["overall"].get(key)) for m in metrics)] for key in overall_keys],
    )
    langs = sorted({lang for m in metrics for lang in m.get("per_language", {})})
    if langs:
        lines += ["", "## Macro-F1 per language", ""]
        lines += _table(
            ["language", *names],
            [
                [lang, *(_num(m.get("per_language", {}).get(lang, {}).get("macro_f")) for m in metrics)]
                for lang in langs
            ],
        )
    labels = sorted({label for m in metrics for label in m["overall"].get("per_label", {})})
    lines += ["", "## F1 per label", ""]
    lines += _table(
        ["label", *names],
        [
            [label, *(_num(m["overall"].get("per_label", {}).get(label, {}).get("f")) for m in metrics)]
            for label in labels
        ],
    )
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
