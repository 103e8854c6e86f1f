"""Iterative stratification (Sechidis et al., 2011) over a bit-packed 0/1 matrix.

For the same matrix and random state it makes the same choices, draw for draw,
as ``IterativeStratification`` of the ``iterative-stratification`` package
(which ``split_records`` called before), so splits stay as they were. It holds
the matrix as one bit per cell and keeps the remaining count of every column
up to date, where the package re-sums a masked copy of the whole dense matrix
for each label: a million records with 40 columns take 5 MB here, not 80 MB
plus a copy as large. This is what lets ``convert`` split a corpus that does
not fit in memory.
"""
from typing import Sequence

import numpy

# Rows per block when packing a dense matrix: bounds the dense temporary.
PACK_ROWS = 1 << 16


class BitMatrix:
    """A 0/1 matrix stored as bits, little-endian within each byte of a row.

    packed (numpy.ndarray): uint8, shape (rows, ceil(cols / 8)).
    n_cols (int): the number of columns.
    """

    def __init__(self, packed: numpy.ndarray, n_cols: int) -> None:
        self.packed = packed
        self.n_cols = n_cols

    @classmethod
    def from_dense(cls, dense: numpy.ndarray) -> "BitMatrix":
        """RETURNS (BitMatrix): the bits of a bool array of shape (rows, cols)."""
        dense = numpy.asarray(dense, dtype=bool)
        return cls(numpy.packbits(dense, axis=1, bitorder="little"), dense.shape[1])

    @property
    def n_rows(self) -> int:
        """RETURNS (int): the number of rows."""
        return self.packed.shape[0]

    def column(self, col: int) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): column ``col`` as a bool array."""
        return (self.packed[:, col >> 3] >> (col & 7)) & 1 == 1

    def row(self, row: int) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): the indices of the columns set in ``row``."""
        bits = numpy.unpackbits(self.packed[row], bitorder="little", count=self.n_cols)
        return numpy.flatnonzero(bits)

    def column_sums(self) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): the number of rows with each column set (int64)."""
        return numpy.array([numpy.count_nonzero(self.column(col)) for col in range(self.n_cols)], dtype=numpy.int64)

    def take(self, rows: numpy.ndarray) -> "BitMatrix":
        """RETURNS (BitMatrix): the given rows, in that order."""
        return BitMatrix(self.packed[rows], self.n_cols)


def iterative_stratification(
    matrix: BitMatrix, ratios: Sequence[float], rng: numpy.random.RandomState
) -> numpy.ndarray:
    """Assign every row to a fold, spreading each column over the folds in
    the given ratios: the column with the fewest (but some) rows left goes
    first, each of its rows to the fold that still wants most of that column,
    ties broken by the fold that wants most rows, then at random.

    matrix (BitMatrix): one row per sample, one column per label (and language).
    ratios (Sequence[float]): the share of each fold, summing to 1.
    rng (numpy.random.RandomState): breaks ties; it is drawn from exactly as
        the ``iterative-stratification`` package draws.
    RETURNS (numpy.ndarray): the fold of each row (int8).
    """
    n_rows = matrix.n_rows
    shares = numpy.asarray(ratios, dtype=float)
    folds = numpy.zeros(n_rows, dtype=numpy.int8)
    wanted_rows = shares * n_rows
    totals = matrix.column_sums()
    wanted = numpy.outer(shares, totals)
    remaining = totals.copy()  # per column, over the rows not placed yet
    unplaced = numpy.ones(n_rows, dtype=bool)
    left = n_rows
    while left:
        if not remaining.any():
            # only rows without any column are left: spread them evenly
            for row in numpy.flatnonzero(unplaced):
                fold = _pick(numpy.flatnonzero(wanted_rows == wanted_rows.max()), rng)
                folds[row] = fold
                wanted_rows[fold] -= 1
            break
        fewest = remaining[remaining > 0].min()
        col = _pick(numpy.flatnonzero(remaining == fewest), rng)
        for row in numpy.flatnonzero(matrix.column(col) & unplaced):
            column_wanted = wanted[:, col]
            best = numpy.flatnonzero(column_wanted == column_wanted.max())
            if len(best) > 1:
                best = best[numpy.flatnonzero(wanted_rows[best] == wanted_rows[best].max())]
            fold = _pick(best, rng)
            folds[row] = fold
            unplaced[row] = False
            left -= 1
            cols = matrix.row(row)
            wanted[fold, cols] -= 1
            wanted_rows[fold] -= 1
            remaining[cols] -= 1
    return folds


def _pick(candidates: numpy.ndarray, rng: numpy.random.RandomState) -> int:
    # the package draws only when there is a tie
    if len(candidates) > 1:
        return int(candidates[rng.choice(len(candidates))])
    return int(candidates[0])
