"""Tune each label's decision threshold for F1 on development data.

One threshold per label, chosen on its own: with imbalanced multi-label data
the best cut-off of a rare label is often far from 0.5. The search is exact:
every cut between two distinct probabilities is tried (at the 6 decimals the
component keeps), so no grid can miss the best one.

The best cut of a few hundred texts also fits their noise, most of all for
rare labels; the resampled methods ("bagged", "smoothed") and one shared cut
("global") give up a little fit on the tuning data for cuts that move less
from one sample to the next. benchmarks/threshold_cv.py compares them on new
texts.
"""
import logging
import zlib
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy

from ..atomic import write_atomic
from ..calibration import calibration_errors, check_arrays, fit_calibration
from ..errors import Errors
from ..evaluation.evaluate import (
    DEFAULT_BATCH_SIZE,
    PredictionArrays,
    find_textcat,
    load_pipeline,
    predict_arrays,
)
from ..metrics import multilabel_scores
from ..pipeline import PRECISION

logger = logging.getLogger("spacy_mlbert")

DEFAULT_THRESHOLD = 0.5
# F1 values closer than this count as a tie (they come from integer counts,
# so real differences are far larger).
TIE_TOLERANCE = 1e-12
# The component rounds its thresholds (for exact JSON round trips): candidates
# are rounded alike, so a tuned threshold decides exactly as it was scored.
SAVED_DECIMALS = PRECISION
# How tune_thresholds seeks each label's cut; see its docstring.
TUNING_METHODS = ("exact", "bagged", "smoothed", "global")
DEFAULT_METHOD = "bagged"
# Resamples for "bagged" and "smoothed": enough for a stable median (the
# tuning data is a few hundred texts, so this costs well under a second).
BOOTSTRAP_RESAMPLES = 200


def candidate_thresholds(probs: numpy.ndarray) -> numpy.ndarray:
    """Every distinct way to cut the probabilities, plus 0.5 (and 0.0).

    A threshold t marks ``prob >= t`` positive. The candidates are the
    midpoints between consecutive distinct probabilities, with 0 and 1 as
    outer bounds so that "every text positive" can be chosen too. They are
    rounded as the component rounds its thresholds, and each is checked in the
    dtype of ``probs`` (float32 for the component), so a threshold scores
    the same here, in the metrics and in the reloaded pipeline.

    probs (numpy.ndarray): 1d probabilities of one label.
    RETURNS (numpy.ndarray): Sorted unique candidates (float64).
    """
    dtype = probs.dtype if probs.dtype.kind == "f" else numpy.dtype("f8")
    values = numpy.unique(numpy.concatenate([probs.astype(dtype), numpy.asarray([0.0, 1.0], dtype)]))
    lower, upper = values[:-1], values[1:]
    mids = numpy.round((lower.astype("f8") + upper.astype("f8")) / 2, SAVED_DECIMALS)
    # neighbouring float32 values have no float32 between them (and rounding
    # can move a midpoint onto the lower one): the upper one is then the cut
    mids = numpy.where(mids.astype(dtype) > lower, mids, numpy.round(upper.astype("f8"), SAVED_DECIMALS))
    # 0.0 keeps every text positive even where a probability is exactly 0
    return numpy.unique(numpy.concatenate([mids, [0.0, DEFAULT_THRESHOLD]]))


def f1_at_thresholds(
    gold: numpy.ndarray, probs: numpy.ndarray, candidates: numpy.ndarray
) -> numpy.ndarray:
    """F1 of one label at many thresholds at once (sort once, then count).

    gold (numpy.ndarray): 1d bool, True for positives.
    probs (numpy.ndarray): 1d probabilities.
    candidates (numpy.ndarray): 1d thresholds; compared in the dtype of ``probs``.
    RETURNS (numpy.ndarray): F1 per candidate; 0.0 where it is 0/0.
    """
    order = numpy.argsort(probs, kind="stable")
    sorted_probs = probs[order]
    # positives among the texts from position i to the end, i = 0..n
    positives_from = numpy.concatenate([numpy.cumsum(gold[order][::-1])[::-1], [0]])
    n_pos = int(gold.sum())
    first_kept = numpy.searchsorted(sorted_probs, candidates.astype(probs.dtype), side="left")
    tp = positives_from[first_kept]
    n_pred = probs.shape[0] - first_kept
    # 2TP / (2TP + FP + FN) == 2TP / (predicted + actual positives)
    denominator = n_pred + n_pos
    return numpy.where(denominator > 0, 2 * tp / numpy.maximum(denominator, 1), 0.0)


def best_threshold(
    gold: numpy.ndarray, probs: numpy.ndarray, candidates: Optional[numpy.ndarray] = None
) -> Tuple[float, float]:
    """The candidate with the highest F1; ties go to the one closest to 0.5
    (then to the lower one), the least surprising of equally good choices.

    gold (numpy.ndarray): 1d bool, True for positives.
    probs (numpy.ndarray): 1d probabilities.
    candidates (Optional[numpy.ndarray]): Thresholds to try; default
        candidate_thresholds(probs).
    RETURNS (Tuple[float, float]): The threshold and its F1.
    """
    if candidates is None:
        candidates = candidate_thresholds(probs)
    return _pick(candidates, f1_at_thresholds(gold, probs, candidates))


def _pick(candidates: numpy.ndarray, scores: numpy.ndarray) -> Tuple[float, float]:
    """The best-scoring candidate; ties go to the one closest to 0.5, then the lower."""
    best = scores.max()
    tied = candidates[scores >= best - TIE_TOLERANCE].astype("f8")
    distance = numpy.abs(tied - DEFAULT_THRESHOLD)
    choice = tied[numpy.lexsort((tied, distance))[0]]
    return float(choice), float(best)


def _resamples(n: int, seed: int) -> numpy.ndarray:
    """(BOOTSTRAP_RESAMPLES, n) row indices drawn with replacement, fixed by seed."""
    return numpy.random.RandomState(seed).randint(0, n, size=(BOOTSTRAP_RESAMPLES, n))


def bagged_threshold(gold: numpy.ndarray, probs: numpy.ndarray, candidates: Optional[numpy.ndarray] = None, *, seed: int = 0) -> float:
    """The median of the best cuts of many bootstrap resamples.

    One sample's best cut jumps with a few texts near it; the median over
    resamples keeps what most of them agree on. Resamples without a positive
    are skipped (every cut scores 0 there).
    """
    cuts = [
        best_threshold(gold[rows], probs[rows], candidates)[0]
        for rows in _resamples(gold.shape[0], seed)
        if gold[rows].any()
    ]
    if not cuts:
        return best_threshold(gold, probs, candidates)[0]
    return round(float(numpy.median(cuts)), SAVED_DECIMALS)


def smoothed_threshold(gold: numpy.ndarray, probs: numpy.ndarray, candidates: Optional[numpy.ndarray] = None, *, seed: int = 0) -> float:
    """The cut with the best F1 averaged over bootstrap resamples: the
    expected F1 curve is smooth where one sample's curve is jagged."""
    if candidates is None:
        candidates = candidate_thresholds(probs)
    curves = [f1_at_thresholds(gold[rows], probs[rows], candidates) for rows in _resamples(gold.shape[0], seed)]
    return _pick(candidates, numpy.mean(curves, axis=0))[0]


def tune_thresholds(
    y_true: numpy.ndarray,
    y_prob: numpy.ndarray,
    known: numpy.ndarray,
    labels: Sequence[str],
    *,
    grid: Optional[Sequence[float]] = None,
    fallback: Optional[Mapping[str, float]] = None,
    method: str = DEFAULT_METHOD,
) -> Dict[str, float]:
    """Per label, the threshold that maximises that label's F1 on the data.

    Only the annotated cells of a label count. A label without an annotated
    positive cannot be tuned (every threshold gives F1 = 0) and keeps its
    fallback threshold. ``method`` says how the maximum is sought:
    "exact" takes the best cut of the data as given; "bagged" the median of
    the best cuts of bootstrap resamples; "smoothed" the best cut of the F1
    curve averaged over resamples; "global" one cut for every label, the one
    with the best macro-F1. The last three trade a little fit for less
    variance, which matters when the tuning data has few positives per label.

    y_true (numpy.ndarray): (n_docs, n_labels) gold 0/1 values.
    y_prob (numpy.ndarray): (n_docs, n_labels) predicted probabilities.
    known (numpy.ndarray): (n_docs, n_labels) True where the gold value is annotated.
    labels (Sequence[str]): Column names.
    grid (Optional[Sequence[float]]): Thresholds to try instead of every cut
        between distinct probabilities; 0.5 is always tried.
    fallback (Optional[Mapping[str, float]]): Threshold of the labels that
        cannot be tuned; 0.5 for labels it does not name.
    method (str): One of TUNING_METHODS.
    RETURNS (Dict[str, float]): {label: threshold}, in label order.
    """
    _check_method(method)
    y_true, y_prob, known = check_arrays(y_true, y_prob, known, labels)
    fixed_candidates = _grid_candidates(grid) if grid is not None else None
    fallback = fallback or {}
    columns = {}
    for j, label in enumerate(labels):
        mask = known[:, j]
        gold = y_true[mask, j] >= 0.5
        if gold.any():
            columns[label] = (gold, y_prob[mask, j])
    if method == "global":
        shared = _global_threshold(list(columns.values()), fixed_candidates)
    thresholds: Dict[str, float] = {}
    for label in labels:
        if label not in columns:
            thresholds[label] = float(fallback.get(label, DEFAULT_THRESHOLD))
        elif method == "global":
            thresholds[label] = shared
        elif method == "bagged":
            thresholds[label] = bagged_threshold(*columns[label], fixed_candidates, seed=_label_seed(label))
        elif method == "smoothed":
            thresholds[label] = smoothed_threshold(*columns[label], fixed_candidates, seed=_label_seed(label))
        else:
            thresholds[label], _ = best_threshold(*columns[label], fixed_candidates)
    # Python's rounding, as the component's: the values are then exactly the
    # ones it saves (numpy's round can be one ulp off the shortest decimal)
    return {label: round(value, SAVED_DECIMALS) for label, value in thresholds.items()}


def _label_seed(label: str) -> int:
    # from the name, not the column: adding or reordering labels leaves the
    # other labels' resamples, and so their thresholds, as they were
    return zlib.crc32(label.encode("utf8"))


def _global_threshold(columns: Sequence[Tuple[numpy.ndarray, numpy.ndarray]], candidates: Optional[numpy.ndarray]) -> float:
    """The one cut with the best mean F1 over the given (gold, probs) columns."""
    if not columns:
        return DEFAULT_THRESHOLD
    if candidates is None:
        candidates = candidate_thresholds(numpy.concatenate([probs for _, probs in columns]))
    scores = numpy.mean([f1_at_thresholds(gold, probs, candidates) for gold, probs in columns], axis=0)
    return _pick(candidates, scores)[0]


def tunable_labels(known: numpy.ndarray, y_true: numpy.ndarray, labels: Sequence[str]) -> Dict[str, bool]:
    """RETURNS (Dict[str, bool]): Whether each label has an annotated positive."""
    positives = ((y_true >= 0.5) & known).any(axis=0)
    return {label: bool(positives[j]) for j, label in enumerate(labels)}


def tune_pipeline(
    model_path: Union[str, Path],
    dev_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    grid: Optional[Sequence[float]] = None,
    method: str = DEFAULT_METHOD,
    calibrate: bool = True,
) -> Dict[str, Any]:
    """Tune the thresholds of a pipeline on dev data and save it with them.

    With ``calibrate``, a per-label calibration is fitted on the same data
    first (see calibrate_on_data) and the thresholds are tuned on the
    calibrated probabilities, the ones ``doc.cats`` then holds. Labels that
    cannot be tuned (no positive in the dev data) keep the thresholds they had.

    model_path (Union[str, Path]): The pipeline to tune.
    dev_path (Union[str, Path]): Gold dev data, a .spacy file or folder.
    output_path (Union[str, Path]): Folder for the tuned pipeline.
    batch_size (int): Texts per batch for nlp.pipe.
    grid (Optional[Sequence[float]]): See tune_thresholds.
    method (str): See tune_thresholds.
    calibrate (bool): Fit the calibration before tuning; without it, the
        pipeline's calibration (if any) is kept as it is.
    RETURNS (Dict[str, Any]): labels, n_docs, untuned (labels kept as they
        were), output, calibration (None without ``calibrate``) and
        before/after, each with thresholds, macro_f, micro_f, per_label_f
        ({label: F1}, annotated labels only), ece (macro) and per_label_ece.
    """
    _check_method(method)  # before the slow part
    output_path = Path(output_path)
    _check_output(Path(model_path), output_path)
    nlp = load_pipeline(model_path)
    result = tune_loaded_pipeline(nlp, dev_path, batch_size=batch_size, grid=grid, method=method, calibrate=calibrate)
    # complete or absent: a failed save leaves no half pipeline that loads
    write_atomic(output_path, nlp.to_disk)
    logger.info("Saved the pipeline with tuned thresholds to '%s'.", output_path)
    return {**result, "output": str(output_path)}


def tune_loaded_pipeline(
    nlp: Any,
    dev_path: Union[str, Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    grid: Optional[Sequence[float]] = None,
    method: str = DEFAULT_METHOD,
    calibrate: bool = True,
) -> Dict[str, Any]:
    """tune_pipeline on a pipeline in memory, which it changes and does not
    save (e.g. a pipeline just quantized, cli/quantize.py).

    nlp (Language): A pipeline with an mlbert_textcat component.
    dev_path, batch_size, grid, method, calibrate: as for tune_pipeline.
    RETURNS (Dict[str, Any]): As tune_pipeline, without output.
    """
    _check_method(method)
    _, textcat = find_textcat(nlp)
    arrays_in = arrays = predict_arrays(nlp, dev_path, batch_size=batch_size)
    before = dict(textcat.thresholds)
    calibration = None
    if calibrate:
        calibration, arrays = calibrate_on_data(nlp, dev_path, arrays_in, batch_size=batch_size)
    after = tune_thresholds(
        arrays.y_true, arrays.y_prob, arrays.known, arrays.labels, grid=grid, fallback=before, method=method
    )
    textcat.set_thresholds(after)
    tunable = tunable_labels(arrays.known, arrays.y_true, arrays.labels)
    return {
        "labels": list(arrays.labels),
        "n_docs": arrays.n_docs,
        "untuned": [label for label, ok in tunable.items() if not ok],
        "method": method,
        "calibration": calibration,
        "before": _summary(arrays_in, before),
        "after": _summary(arrays, after),
    }


def calibrate_on_data(
    nlp: Any, dev_path: Union[str, Path], arrays: PredictionArrays, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> Tuple[Dict[str, Any], PredictionArrays]:
    """Fit the pipeline's per-label calibration on gold data and set it.

    The fit needs the raw probabilities: ``arrays`` are used when the
    pipeline has no calibration yet, otherwise the data is predicted again
    without it. The calibrated probabilities are then predicted by the
    pipeline itself (not computed here), so thresholds tuned on them decide
    exactly as the saved pipeline will.

    nlp (Language): A pipeline with an mlbert_textcat component.
    dev_path (Union[str, Path]): The gold data, a .spacy file or folder.
    arrays (PredictionArrays): The pipeline's predictions of dev_path as it is.
    batch_size (int): Texts per batch for nlp.pipe.
    RETURNS (Tuple[Dict[str, Any], PredictionArrays]): {"parameters":
        {label: [a, b]}, "identity": labels left uncalibrated (no annotated
        positive or no negative)}, and the calibrated predictions.
    """
    _, textcat = find_textcat(nlp)
    if any(pair != [1.0, 0.0] for pair in textcat.calibration.values()):
        textcat.set_calibration({})
        arrays = predict_arrays(nlp, dev_path, batch_size=batch_size)
    parameters, identity = fit_calibration(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels)
    textcat.set_calibration(parameters)
    logger.info("Fitted the calibration of %d label(s) on '%s'.", len(parameters) - len(identity), dev_path)
    calibrated = predict_arrays(nlp, dev_path, batch_size=batch_size)
    return {"parameters": textcat.calibration, "identity": identity}, calibrated


def _summary(arrays: PredictionArrays, thresholds: Mapping[str, float]) -> Dict[str, Any]:
    scores = multilabel_scores(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels, thresholds)
    ece = calibration_errors(arrays.y_true, arrays.y_prob, arrays.known, arrays.labels)
    return {
        "thresholds": dict(thresholds),
        "macro_f": scores["macro_f"],
        "micro_f": scores["micro_f"],
        "per_label_f": {label: values["f"] for label, values in scores["per_label"].items()},
        "ece": ece["macro"],
        "per_label_ece": ece["per_label"],
    }



def _check_method(method: str) -> None:
    if method not in TUNING_METHODS:
        raise ValueError(Errors.E100.format(method=method, methods=", ".join(TUNING_METHODS)))


def _grid_candidates(grid: Sequence[float]) -> numpy.ndarray:
    values = []
    for value in grid:
        is_number = isinstance(value, (int, float, numpy.integer, numpy.floating))
        if isinstance(value, bool) or not is_number or not 0.0 <= value <= 1.0:
            raise ValueError(Errors.E054.format(value=value))
        values.append(round(float(value), SAVED_DECIMALS))
    # kept in float64 so that the chosen value is returned as given;
    # f1_at_thresholds compares in the probabilities' dtype
    return numpy.unique(numpy.asarray(values + [DEFAULT_THRESHOLD], dtype="f8"))


def _check_output(model_path: Path, output_path: Path) -> None:
    if output_path.exists() and model_path.exists() and output_path.resolve() == model_path.resolve():
        raise ValueError(Errors.E056.format(path=output_path))
    if output_path.exists():
        is_empty_dir = output_path.is_dir() and not any(output_path.iterdir())
        is_pipeline = output_path.is_dir() and (output_path / "config.cfg").is_file()
        if not (is_empty_dir or is_pipeline):
            raise ValueError(Errors.E057.format(path=output_path))
