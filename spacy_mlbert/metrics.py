"""Multi-label metrics over arrays, shared by the scorer and the evaluate command.

A label that is not annotated for a text (absent from the gold ``doc.cats``) is
*unknown* there: it counts neither as a positive nor as a negative.

Undefined is not zero: a figure with no annotated cell behind it (a label
never annotated, a language whose texts annotate no label) is None, never
0.0; a label without one is left out of ``per_label``. Where cells are
annotated, precision, recall and F1 follow scikit-learn's conventions
(``zero_division=0``: precision 0.0 without a predicted positive, recall 0.0
without a gold positive), so the per-language numbers match the official
SemEval-2025 Task 11 script on complete annotations.
"""
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy
from spacy.training import Example


def cats_row(cats: Mapping[str, float], labels: Sequence[str]) -> numpy.ndarray:
    """The values of ``cats`` in label order (0.0 for a label it lacks).

    cats (Mapping[str, float]): A doc.cats.
    labels (Sequence[str]): The columns.
    RETURNS (numpy.ndarray): (n_labels,) float32.
    """
    return numpy.asarray([float(cats.get(label, 0.0)) for label in labels], dtype="f")


class LabelRows:
    """Gold values, known-mask and probabilities of documents, added one
    document at a time: the one way from ``doc.cats`` to the arrays that
    :func:`multilabel_scores` takes, for the scorer, the evaluation and
    every engine.

    labels (Sequence[str]): The columns.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.rows_true: List[numpy.ndarray] = []
        self.rows_known: List[numpy.ndarray] = []
        self.rows_prob: List[numpy.ndarray] = []

    def __len__(self) -> int:
        return len(self.rows_true)

    def add_gold(self, cats: Mapping[str, float]) -> None:
        """Add a gold document's values; a label it lacks is unknown there."""
        self.rows_true.append(cats_row(cats, self.labels))
        self.rows_known.append(numpy.asarray([label in cats for label in self.labels], dtype=bool))

    def add_predicted(self, cats: Mapping[str, float]) -> None:
        """Add a predicted document's probabilities (in gold document order)."""
        self.rows_prob.append(cats_row(cats, self.labels))

    def arrays(
        self, y_prob: Optional[numpy.ndarray] = None
    ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """y_true (0/1), y_prob and known (bool), each (n_docs, n_labels).

        y_prob (Optional[numpy.ndarray]): Probabilities made elsewhere, row i
            for gold document i; default: the rows added with add_predicted.
        """
        shape = (len(self.rows_true), len(self.labels))

        def stack(rows: List[numpy.ndarray], dtype: str) -> numpy.ndarray:
            return numpy.stack(rows).astype(dtype) if rows else numpy.zeros(shape, dtype=dtype)

        probs = stack(self.rows_prob, "f") if y_prob is None else numpy.asarray(y_prob, dtype="f")
        return stack(self.rows_true, "f"), probs.reshape(shape), stack(self.rows_known, "bool")


def examples_to_arrays(
    examples: Iterable[Example], labels: Sequence[str]
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Gold values, predicted probabilities and the known-mask, each (n_docs, n_labels).

    RETURNS (Tuple[ndarray, ndarray, ndarray]): y_true (0/1), y_prob, known (bool).
    """
    rows = LabelRows(labels)
    for eg in examples:
        rows.add_gold(eg.reference.cats)
        rows.add_predicted(eg.predicted.cats)
    return rows.arrays()


def _prf(tp: float, fp: float, fn: float) -> Tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def roc_auc(y_true: numpy.ndarray, y_prob: numpy.ndarray) -> Optional[float]:
    """ROC AUC, or None when only one class occurs (AUC is undefined then).

    The Mann-Whitney form: the chance that a random positive scores above a
    random negative, ties counting half (tied scores share their mean rank).

    y_true (numpy.ndarray): (n,) gold values, positive where >= 0.5.
    y_prob (numpy.ndarray): (n,) scores.
    RETURNS (Optional[float]): The area, or None.
    """
    positive = numpy.asarray(y_true) >= 0.5
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = numpy.unique(
        numpy.asarray(y_prob, dtype="float64"), return_inverse=True, return_counts=True
    )
    # 1-based rank of each distinct score, averaged over its ties
    mean_ranks = numpy.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(mean_ranks[inverse.reshape(-1)][positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def multilabel_scores(
    y_true: numpy.ndarray,
    y_prob: numpy.ndarray,
    known: numpy.ndarray,
    labels: Sequence[str],
    thresholds: Mapping[str, float],
) -> Dict:
    """Micro and macro P/R/F1, macro AUC and per-label figures.

    y_true (ndarray): (n_docs, n_labels) gold 0/1 values.
    y_prob (ndarray): (n_docs, n_labels) predicted probabilities.
    known (ndarray): (n_docs, n_labels) True where the gold value is annotated.
    labels (Sequence[str]): column names.
    thresholds (Mapping[str, float]): decision threshold per label (>= is positive).
    RETURNS (dict): micro_p/r/f, macro_p/r/f, macro_auc, n_docs and per_label
        {label: {p, r, f, auc, support, n_known}}. Macro averages run over the
        labels annotated for at least one document; without any such label
        every micro and macro figure is None (nothing was scored).
    """
    per_label: Dict[str, Dict] = {}
    tp_all = fp_all = fn_all = 0.0
    for j, label in enumerate(labels):
        mask = known[:, j]
        if not mask.any():
            continue
        gold = y_true[mask, j] >= 0.5
        pred = y_prob[mask, j] >= thresholds.get(label, 0.5)
        tp = float(numpy.sum(gold & pred))
        fp = float(numpy.sum(~gold & pred))
        fn = float(numpy.sum(gold & ~pred))
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        p, r, f = _prf(tp, fp, fn)
        per_label[label] = {
            "p": p,
            "r": r,
            "f": f,
            "auc": roc_auc(gold, y_prob[mask, j]),
            "support": int(gold.sum()),
            "n_known": int(mask.sum()),
        }
    # no annotated cell: nothing was scored, so the figures are undefined
    micro: Tuple[Optional[float], ...] = _prf(tp_all, fp_all, fn_all) if per_label else (None, None, None)
    micro_p, micro_r, micro_f = micro
    aucs = [v["auc"] for v in per_label.values() if v["auc"] is not None]

    def macro(key: str) -> Optional[float]:
        values = [v[key] for v in per_label.values()]
        return float(numpy.mean(values)) if values else None

    return {
        "n_docs": int(y_true.shape[0]),
        "micro_p": micro_p,
        "micro_r": micro_r,
        "micro_f": micro_f,
        "macro_p": macro("p"),
        "macro_r": macro("r"),
        "macro_f": macro("f"),
        "macro_auc": float(numpy.mean(aucs)) if aucs else None,
        "per_label": per_label,
    }
