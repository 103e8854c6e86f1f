"""Splitting records into train/dev/test, stratified over labels and languages.

- Exact duplicate texts (equal after NFC) are removed first, keeping the first
  occurrence in input order, so that no text can land in two splits. The
  removed records are reported, with a flag when their labels differed from
  the kept record's.
- The split is iterative stratification (Sechidis et al., 2011), done in
  one pass with three target ratios (:mod:`.stratify`, which splits as the
  ``iterative-stratification`` package did), over a 0/1 matrix of the labels (an unknown label counts as 0 here,
  and only here) plus one column per language. Label combinations and
  languages are thereby spread over the splits in the given ratios.
- The rows are shuffled with the seed first; the same input and seed give the
  same split. Each split keeps the input order of its records.
"""
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy

from ..errors import Errors
from .records import DataError, DuplicateText, Record
from .stratify import BitMatrix, iterative_stratification

logger = logging.getLogger("spacy_mlbert")

SPLIT_NAMES = ("train", "dev", "test")


def parse_ratios(value: Union[str, Sequence[float]]) -> Tuple[float, ...]:
    """Read split ratios: two or three positive numbers that sum to 1.

    value (Union[str, Sequence[float]]): e.g. "0.8,0.1,0.1" or (0.9, 0.1).
    RETURNS (Tuple[float, ...]): the ratios for train, dev (and test).
    """
    original = value
    parts = value.split(",") if isinstance(value, str) else value
    try:
        ratios = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        raise DataError(Errors.E047.format(value=original, problem="they are not numbers")) from None
    if len(ratios) not in (2, 3):
        raise DataError(Errors.E047.format(value=original, problem=f"there are {len(ratios)}"))
    if any(not ratio > 0 for ratio in ratios):  # also refuses NaN
        raise DataError(Errors.E047.format(value=original, problem="each must be greater than 0"))
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise DataError(Errors.E047.format(value=original, problem=f"they sum to {sum(ratios):g}"))
    return ratios


def remove_duplicate_texts(records: Sequence[Record]) -> Tuple[List[Record], List[DuplicateText]]:
    """Keep the first record of each text; report the others.

    records (Sequence[Record]): records with NFC-normalised texts.
    RETURNS (Tuple[List[Record], List[DuplicateText]]): the kept records in
        order, and the removed ones.
    """
    first: Dict[str, Record] = {}
    kept: List[Record] = []
    removed: List[DuplicateText] = []
    for record in records:
        original = first.get(record.text)
        if original is None:
            first[record.text] = record
            kept.append(record)
            continue
        same = original.cats == record.cats
        removed.append(DuplicateText(record.location, original.location, record.id, original.id, same))
        if not same:
            logger.debug(
                "%s has the same text as %s but other labels; the first is kept",
                record.location,
                original.location,
            )
    return kept, removed


def label_matrix(
    records: Sequence[Record], labels: Sequence[str], langs: Optional[Sequence[str]] = None
) -> numpy.ndarray:
    """The 0/1 matrix to stratify on: known positives, then one column per language.

    records (Sequence[Record]): the records.
    labels (Sequence[str]): the label columns.
    langs (Optional[Sequence[str]]): the language columns (default: sorted langs).
    RETURNS (numpy.ndarray): bool array of shape (n_records, n_labels + n_langs).
    """
    if langs is None:
        langs = sorted({record.lang for record in records})
    lang_index = {lang: i for i, lang in enumerate(langs)}
    matrix = numpy.zeros((len(records), len(labels) + len(langs)), dtype=bool)
    for row, record in enumerate(records):
        for col, label in enumerate(labels):
            matrix[row, col] = record.cats.get(label, 0.0) == 1.0
        matrix[row, len(labels) + lang_index[record.lang]] = True
    return matrix


def split_records(
    records: Sequence[Record],
    ratios: Union[str, Sequence[float]] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    labels: Optional[Sequence[str]] = None,
) -> Tuple[Dict[str, List[Record]], List[DuplicateText]]:
    """Remove duplicate texts, then split the records by iterative stratification.

    records (Sequence[Record]): the records (finalized: complete records hold
        all their negatives).
    ratios (Union[str, Sequence[float]]): train, dev (and test) shares, summing to 1.
    seed (int): the random seed.
    labels (Optional[Sequence[str]]): the label set (default: labels seen in cats).
    RETURNS (Tuple[Dict[str, List[Record]], List[DuplicateText]]): the splits,
        "train", "dev" (and "test"), in input order, and the removed duplicates.
    """
    shares = parse_ratios(ratios)
    names = SPLIT_NAMES[: len(shares)]
    kept, removed = remove_duplicate_texts(records)
    if labels is None:
        seen: Dict[str, None] = {}
        for record in kept:
            for label in record.cats:
                seen.setdefault(label, None)
        labels = list(seen)
    splits: Dict[str, List[Record]] = {name: [] for name in names}
    if kept:
        folds = stratified_folds(BitMatrix.from_dense(label_matrix(kept, labels)), shares, seed=seed)
        for record, fold in zip(kept, folds):
            splits[names[fold]].append(record)
    warn_empty_splits({name: len(part) for name, part in splits.items()}, shares)
    return splits, removed


def stratified_folds(matrix: BitMatrix, shares: Sequence[float], *, seed: int) -> numpy.ndarray:
    """The split of each row: the rows are shuffled with the seed, then
    stratified (the same random state breaks the ties).

    matrix (BitMatrix): the rows of :func:`label_matrix`, in input order.
    shares (Sequence[float]): the ratios, from :func:`parse_ratios`.
    seed (int): the random seed.
    RETURNS (numpy.ndarray): the index of each row's split (int8), in input order.
    """
    rng = numpy.random.RandomState(seed)
    order = rng.permutation(matrix.n_rows)
    folds = numpy.empty(matrix.n_rows, dtype=numpy.int8)
    folds[order] = iterative_stratification(matrix.take(order), shares, rng)
    return folds


def warn_empty_splits(sizes: Dict[str, int], shares: Sequence[float]) -> None:
    """Log a warning for each split that got no record.

    sizes (Dict[str, int]): the number of records of each split.
    shares (Sequence[float]): the ratios.
    """
    total = sum(sizes.values())
    for name, size in sizes.items():
        if not size:
            logger.warning("split '%s' is empty: %d record(s) are too few for the ratios %s", name, total, shares)
