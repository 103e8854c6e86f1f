"""The multi-label scorer: micro/macro P/R/F1, macro AUC and per-label figures."""
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

from spacy.training import Example
from spacy.util import registry

from .metrics import examples_to_arrays, multilabel_scores


def score_multilabel(
    examples: Iterable[Example],
    *,
    labels: Sequence[str],
    threshold: float = 0.5,
    thresholds: Optional[Mapping[str, float]] = None,
    **cfg: Any,
) -> Dict[str, Any]:
    """Score multi-label predictions in ``doc.cats`` against the gold ``doc.cats``.

    examples (Iterable[Example]): Predicted and gold documents.
    labels (Sequence[str]): The component's labels.
    threshold (float): Decision threshold for labels without their own.
    thresholds (Optional[Mapping[str, float]]): Per-label decision thresholds.
    RETURNS (Dict[str, Any]): cats_score (macro F1, the model-selection score),
        cats_micro_p/r/f, cats_macro_p/r/f, cats_macro_auc, cats_f_per_type,
        cats_auc_per_type. spaCy's training table and score weights need
        numbers, so a figure that nothing was scored for (no annotated cell
        at all) is 0.0 here, as in spaCy's own score_cats; the per-label
        dicts hold only annotated labels, and per-language figures, with
        None where undefined, come from ``spacy-mlbert evaluate``.
    """
    per_label_thresholds = {label: (thresholds or {}).get(label, threshold) for label in labels}
    y_true, y_prob, known = examples_to_arrays(examples, labels)
    scores = multilabel_scores(y_true, y_prob, known, labels, per_label_thresholds)
    per_label = scores["per_label"]
    figures = {key: _number(scores[key]) for key in ("micro_p", "micro_r", "micro_f", "macro_p", "macro_r", "macro_f")}
    return {
        "cats_score": figures["macro_f"],
        "cats_score_desc": "macro F",
        **{f"cats_{key}": value for key, value in figures.items()},
        "cats_macro_auc": scores["macro_auc"],
        "cats_f_per_type": {
            label: {"p": v["p"], "r": v["r"], "f": v["f"]} for label, v in per_label.items()
        },
        "cats_auc_per_type": {label: v["auc"] for label, v in per_label.items()},
    }


def _number(value: Optional[float]) -> float:
    # spaCy's training loop calls float() on every score it weighs or shows
    return 0.0 if value is None else float(value)


@registry.scorers("spacy-mlbert.multilabel_scorer.v1")
def make_multilabel_scorer() -> Callable[..., Dict[str, Any]]:
    return score_multilabel
