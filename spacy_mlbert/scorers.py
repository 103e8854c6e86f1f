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
        cats_auc_per_type.
    """
    per_label_thresholds = {label: (thresholds or {}).get(label, threshold) for label in labels}
    y_true, y_prob, known = examples_to_arrays(examples, labels)
    scores = multilabel_scores(y_true, y_prob, known, labels, per_label_thresholds)
    per_label = scores["per_label"]
    return {
        "cats_score": scores["macro_f"],
        "cats_score_desc": "macro F",
        "cats_micro_p": scores["micro_p"],
        "cats_micro_r": scores["micro_r"],
        "cats_micro_f": scores["micro_f"],
        "cats_macro_p": scores["macro_p"],
        "cats_macro_r": scores["macro_r"],
        "cats_macro_f": scores["macro_f"],
        "cats_macro_auc": scores["macro_auc"],
        "cats_f_per_type": {
            label: {"p": v["p"], "r": v["r"], "f": v["f"]} for label, v in per_label.items()
        },
        "cats_auc_per_type": {label: v["auc"] for label, v in per_label.items()},
    }


@registry.scorers("spacy-mlbert.multilabel_scorer.v1")
def make_multilabel_scorer() -> Callable[..., Dict[str, Any]]:
    return score_multilabel
