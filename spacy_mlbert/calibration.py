"""Probability calibration of ``mlbert_textcat``: the maths, with numpy only.

The component maps each label's logit ``z`` to ``sigmoid(a * z + b)``, with
one ``(a, b)`` per label (Platt scaling). ``a`` alone is temperature scaling
(``a = 1 / T``); the shift ``b`` is fitted too, because the logits of a
multi-label model are off by a per-label offset as often as by a scale:
``pos_weight`` multiplies the positive term of a label's loss, which moves its
logits by about ``log(pos_weight)`` (up to log 100 with "auto"), and a label's
base rate in the training data is not its base rate in use. A temperature
cannot undo a shift. Both parameters are kept monotone (``a > 0``), so
calibration never reorders a label's texts: ROC AUC is unchanged and every
decision a threshold makes on the raw scale, another threshold makes on the
calibrated one.

Fitting (:func:`fit_platt`) minimises the log-loss of the annotated cells of
a held-out slice by Newton's method, plus a weak Gaussian prior centred on
the identity ``(1, 0)``: worth about one text of evidence, it is negligible
for a label with tens of positives and keeps a label with one or two from
being fitted to their noise. A label without a positive or without a negative
on the slice (the log-loss then falls without bound as ``a`` or ``b`` grows)
keeps the identity. The parameters stay within :data:`SCALE_BOUNDS` and
:data:`SHIFT_BOUNDS`.

:func:`calibration_errors` measures the result: expected calibration error
(ECE) with equal-width bins over the annotated cells.
"""
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy

from .errors import Errors

IDENTITY: Tuple[float, float] = (1.0, 0.0)
# a in [0.02, 50]: temperatures from 1/50 to 50; b in [-15, 15]: more than
# the log-odds range of float32 probabilities that are not exactly 0 or 1
SCALE_BOUNDS = (0.02, 50.0)
SHIFT_BOUNDS = (-15.0, 15.0)
# Strength of the Gaussian prior on (a - 1, b), in texts' worth of log-loss curvature.
DEFAULT_PRIOR = 1.0
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before taking their log-odds.
EPSILON = 1e-7
# Equal-width bins of [0, 1] for ECE and the reliability diagram.
DEFAULT_BINS = 15
MAX_ITERATIONS = 100
TOLERANCE = 1e-10


def logits_from_probs(probs: Any) -> numpy.ndarray:
    """The log-odds of probabilities (clipped to [EPSILON, 1 - EPSILON]), float64.

    probs (array-like): Probabilities of any shape.
    RETURNS (numpy.ndarray): log(p / (1 - p)), same shape.
    """
    p = numpy.clip(numpy.asarray(probs, dtype="f8"), EPSILON, 1.0 - EPSILON)
    return numpy.log(p) - numpy.log1p(-p)


def apply_calibration(logits: Any, scale: Any, shift: Any) -> numpy.ndarray:
    """sigmoid(scale * logits + shift), in float64, columns broadcast.

    logits (array-like): Logits, (n,) or (n, n_labels).
    scale, shift (array-like): Scalars or (n_labels,) parameters.
    RETURNS (numpy.ndarray): Calibrated probabilities.
    """
    x = numpy.asarray(logits, dtype="f8") * numpy.asarray(scale, dtype="f8") + numpy.asarray(shift, dtype="f8")
    return _sigmoid(x)


def _sigmoid(x: numpy.ndarray) -> numpy.ndarray:
    # exp of a negative number only, so no overflow either way
    e = numpy.exp(-numpy.abs(x))
    return numpy.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_loss(logits: Any, gold: Any, scale: float = 1.0, shift: float = 0.0) -> float:
    """Mean binary log-loss of sigmoid(scale * logits + shift) against 0/1 gold.

    logits (array-like): 1d logits.
    gold (array-like): 1d, truthy for positives.
    scale, shift (float): The calibration to score.
    RETURNS (float): The mean log-loss (nats); nan for empty input.
    """
    z = numpy.asarray(logits, dtype="f8")
    y = numpy.asarray(gold, dtype="f8")
    if z.size == 0:
        return float("nan")
    x = scale * z + shift
    return float(numpy.mean(numpy.logaddexp(0.0, x) - y * x))


def fit_platt(
    logits: Any,
    gold: Any,
    *,
    bias: bool = True,
    prior: float = DEFAULT_PRIOR,
) -> Tuple[float, float]:
    """The (a, b) minimising the log-loss of sigmoid(a * logits + b).

    Newton's method with a backtracking line search on the (convex) summed
    log-loss plus ``prior / 2 * ((a - 1)**2 + b**2)``, the parameters kept
    within SCALE_BOUNDS and SHIFT_BOUNDS. Without a positive or without a
    negative, the identity (1, 0) is returned.

    logits (array-like): 1d logits of one label's annotated cells.
    gold (array-like): 1d, truthy for positives.
    bias (bool): Fit the shift b too (Platt scaling); False fits the
        temperature only and returns b = 0.
    prior (float): Strength of the pull towards the identity (>= 0).
    RETURNS (Tuple[float, float]): (a, b).
    """
    z = numpy.asarray(logits, dtype="f8").ravel()
    y = (numpy.asarray(gold, dtype="f8").ravel() >= 0.5).astype("f8")
    if z.shape != y.shape:
        raise ValueError(Errors.E131.format(what="logits and gold", shapes=[z.shape, y.shape]))
    if not numpy.all(numpy.isfinite(z)):
        raise ValueError(Errors.E132.format(what="logits"))
    if isinstance(prior, bool) or not isinstance(prior, (int, float)) or not prior >= 0 or math.isinf(prior):
        raise ValueError(Errors.E133.format(name="prior", value=prior, expected="a finite number >= 0"))
    if y.size == 0 or y.min() == y.max():
        return IDENTITY
    lower = numpy.asarray([SCALE_BOUNDS[0], SHIFT_BOUNDS[0]])
    upper = numpy.asarray([SCALE_BOUNDS[1], SHIFT_BOUNDS[1]])
    free = numpy.asarray([True, bias])
    centre = numpy.asarray(IDENTITY)

    def objective(theta: numpy.ndarray) -> float:
        x = theta[0] * z + theta[1]
        penalty = 0.5 * prior * float(numpy.sum((theta - centre) ** 2))
        return float(numpy.sum(numpy.logaddexp(0.0, x) - y * x)) + penalty

    theta = centre.copy()
    value = objective(theta)
    for _ in range(MAX_ITERATIONS):
        p = _sigmoid(theta[0] * z + theta[1])
        residual = p - y
        weight = p * (1.0 - p)
        gradient = numpy.asarray([residual @ z, residual.sum()]) + prior * (theta - centre)
        hessian = numpy.asarray(
            [[weight @ (z * z), weight @ z], [weight @ z, weight.sum()]]
        ) + (prior + 1e-12) * numpy.eye(2)
        step = numpy.zeros(2)
        if bias:
            step = -numpy.linalg.solve(hessian, gradient)
        else:
            step[0] = -gradient[0] / hessian[0, 0]
        step = numpy.where(free, step, 0.0)
        # halve the step until the loss falls (it must: the step descends)
        size = 1.0
        while True:
            candidate = numpy.clip(theta + size * step, lower, upper)
            candidate_value = objective(candidate)
            if candidate_value <= value or size < 1e-8:
                break
            size /= 2
        moved = float(numpy.max(numpy.abs(candidate - theta)))
        improved = value - candidate_value
        if candidate_value <= value:
            theta, value = candidate, candidate_value
        if moved < TOLERANCE or improved <= TOLERANCE * max(1.0, abs(value)):
            break
    return float(theta[0]), float(theta[1] if bias else 0.0)


def fit_calibration(
    y_true: Any,
    y_prob: Any,
    known: Any,
    labels: Sequence[str],
    *,
    bias: bool = True,
    prior: float = DEFAULT_PRIOR,
) -> Tuple[Dict[str, List[float]], List[str]]:
    """Per label, the Platt scaling of its probabilities that fits the data best.

    The probabilities are turned back into logits (log-odds) and each label
    is fitted on its annotated cells only (fit_platt). A label without an
    annotated positive or without an annotated negative keeps the identity.

    y_true (array-like): (n_docs, n_labels) gold 0/1 values.
    y_prob (array-like): (n_docs, n_labels) uncalibrated probabilities.
    known (array-like): (n_docs, n_labels) True where the gold value is annotated.
    labels (Sequence[str]): Column names.
    bias (bool): Fit the shift too (see fit_platt).
    prior (float): See fit_platt.
    RETURNS (Tuple[Dict[str, List[float]], List[str]]): {label: [a, b]} for
        every label, and the labels kept at the identity for lack of a
        positive or a negative.
    """
    y_true, y_prob, known = check_arrays(y_true, y_prob, known, labels)
    logits = logits_from_probs(y_prob)
    calibration: Dict[str, List[float]] = {}
    untouched: List[str] = []
    for j, label in enumerate(labels):
        mask = known[:, j]
        gold = y_true[mask, j] >= 0.5
        if not gold.any() or gold.all():
            calibration[label] = list(IDENTITY)
            untouched.append(label)
            continue
        calibration[label] = list(fit_platt(logits[mask, j], gold, bias=bias, prior=prior))
    return calibration, untouched


def calibrate_probs(y_prob: Any, calibration: Mapping[str, Sequence[float]], labels: Sequence[str]) -> numpy.ndarray:
    """Apply {label: [a, b]} to uncalibrated probabilities (labels not named: identity).

    y_prob (array-like): (n_docs, n_labels) probabilities.
    calibration (Mapping[str, Sequence[float]]): The parameters.
    labels (Sequence[str]): Column names.
    RETURNS (numpy.ndarray): (n_docs, n_labels) float64 calibrated probabilities.
    """
    scale, shift = calibration_arrays(calibration, labels)
    return apply_calibration(logits_from_probs(y_prob), scale, shift)


def calibration_arrays(
    calibration: Mapping[str, Sequence[float]], labels: Sequence[str]
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(scale, shift), float32 arrays of shape (n_labels,), identity where unset."""
    pairs = [calibration.get(label, IDENTITY) for label in labels]
    scale = numpy.asarray([pair[0] for pair in pairs], dtype="f")
    shift = numpy.asarray([pair[1] for pair in pairs], dtype="f")
    return scale, shift


def check_calibration(calibration: Any, decimals: int) -> Dict[str, List[float]]:
    """Validate {label: [a, b]} and return it as plain lists, rounded.

    ``a`` must be a finite number > 0 (a negative scale would reverse the
    label's ranking), ``b`` a finite number. Rounding to ``decimals`` keeps
    the JSON round trip of the saved component exact.

    calibration (Any): The mapping to check.
    decimals (int): Decimals kept.
    RETURNS (Dict[str, List[float]]): The checked copy.
    """
    if not isinstance(calibration, Mapping):
        raise ValueError(Errors.E130.format(label="<all>", value=calibration))
    checked: Dict[str, List[float]] = {}
    for label, pair in calibration.items():
        ok = (
            isinstance(label, str)
            and isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(_is_finite_number(v) for v in pair)
            and pair[0] > 0
        )
        if not ok:
            raise ValueError(Errors.E130.format(label=label, value=pair))
        scale = round(float(pair[0]), decimals)
        if scale <= 0:
            raise ValueError(Errors.E130.format(label=label, value=pair))
        checked[label] = [scale, round(float(pair[1]), decimals) + 0.0]
    return checked


def _is_finite_number(value: Any) -> bool:
    is_number = isinstance(value, (int, float, numpy.integer, numpy.floating))
    return is_number and not isinstance(value, bool) and math.isfinite(float(value))


# --- measuring it --------------------------------------------------------------


def reliability_bins(
    gold: Any, probs: Any, n_bins: int = DEFAULT_BINS
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Cells per bin, their mean probability and their share of positives.

    Bin i holds probabilities in [i / n_bins, (i + 1) / n_bins); the last one
    includes 1.0.

    gold (array-like): 1d, truthy for positives.
    probs (array-like): 1d probabilities in [0, 1].
    n_bins (int): Number of equal-width bins.
    RETURNS (Tuple[ndarray, ndarray, ndarray]): counts (int), mean probability
        and frequency of positives per bin (nan in empty bins).
    """
    _check_bins(n_bins)
    p = numpy.asarray(probs, dtype="f8").ravel()
    y = (numpy.asarray(gold, dtype="f8").ravel() >= 0.5).astype("f8")
    if p.shape != y.shape:
        raise ValueError(Errors.E131.format(what="gold and probs", shapes=[y.shape, p.shape]))
    if p.size and not (numpy.all(numpy.isfinite(p)) and p.min() >= 0.0 and p.max() <= 1.0):
        raise ValueError(Errors.E132.format(what="probabilities (they must lie in [0, 1])"))
    index = numpy.minimum((p * n_bins).astype(int), n_bins - 1)
    counts = numpy.bincount(index, minlength=n_bins)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        mean_prob = numpy.bincount(index, weights=p, minlength=n_bins) / counts
        frequency = numpy.bincount(index, weights=y, minlength=n_bins) / counts
    return counts, mean_prob, frequency


def expected_calibration_error(gold: Any, probs: Any, n_bins: int = DEFAULT_BINS) -> Optional[float]:
    """ECE: the mean over bins of |share of positives - mean probability|,
    weighted by the bin's share of the cells (equal-width bins).

    gold (array-like): 1d, truthy for positives.
    probs (array-like): 1d probabilities.
    n_bins (int): Number of equal-width bins of [0, 1].
    RETURNS (Optional[float]): ECE in [0, 1]; None without a cell.
    """
    counts, mean_prob, frequency = reliability_bins(gold, probs, n_bins)
    total = counts.sum()
    if total == 0:
        return None
    filled = counts > 0
    return float(numpy.sum(counts[filled] * numpy.abs(frequency[filled] - mean_prob[filled])) / total)


def calibration_errors(
    y_true: Any,
    y_prob: Any,
    known: Any,
    labels: Sequence[str],
    *,
    n_bins: int = DEFAULT_BINS,
) -> Dict[str, Any]:
    """ECE per label over its annotated cells, and their mean.

    y_true (array-like): (n_docs, n_labels) gold 0/1 values.
    y_prob (array-like): (n_docs, n_labels) probabilities.
    known (array-like): (n_docs, n_labels) True where the gold value is annotated.
    labels (Sequence[str]): Column names.
    n_bins (int): Number of equal-width bins.
    RETURNS (Dict[str, Any]): JSON-serialisable: "macro" (the mean over the
        labels with an annotated cell; None without any), "per_label"
        ({label: ECE}, those labels only), "n_bins" and "bins" (in words).
    """
    _check_bins(n_bins)
    y_true, y_prob, known = check_arrays(y_true, y_prob, known, labels)
    per_label: Dict[str, float] = {}
    for j, label in enumerate(labels):
        mask = known[:, j]
        value = expected_calibration_error(y_true[mask, j], y_prob[mask, j], n_bins)
        if value is not None:
            per_label[label] = value
    return {
        "macro": float(numpy.mean(list(per_label.values()))) if per_label else None,
        "per_label": per_label,
        "n_bins": n_bins,
        "bins": f"{n_bins} equal-width bins of [0, 1] over each label's annotated cells; macro = mean over labels",
    }


def check_arrays(
    y_true: Any, y_prob: Any, known: Any, labels: Sequence[str]
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The three arrays as numpy, checked to be (n_docs, n_labels) each."""
    y_true = numpy.asarray(y_true, dtype="f8")
    y_prob = numpy.asarray(y_prob)
    if y_prob.dtype.kind != "f":
        y_prob = y_prob.astype("f8")
    known = numpy.asarray(known, dtype=bool)
    shapes = [y_true.shape, y_prob.shape, known.shape]
    if any(len(shape) != 2 or shape != (y_true.shape[0], len(labels)) for shape in shapes):
        raise ValueError(Errors.E055.format(n_labels=len(labels), shapes=shapes))
    return y_true, y_prob, known


def _check_bins(n_bins: Any) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(Errors.E133.format(name="n_bins", value=n_bins, expected="a positive integer"))
