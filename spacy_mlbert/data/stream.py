"""Converting a corpus larger than memory: two passes over the inputs.

``read_records`` holds every record (2 GB of Python objects for a 300 MB
JSONL). ``convert`` instead reads the inputs twice:

1. :func:`index_corpus` validates every record and keeps only what the split
   needs, some 20 bytes a record (:class:`CorpusIndex`): a 128-bit hash of the
   text (for the duplicate texts), the language and the positive labels.
   Record ids are checked for repeats through their 64-bit hashes
   (:class:`HashedIds`); only when two hashes meet is the pass read again,
   keeping those few ids exactly, so that the error (E034) and, with
   skip_invalid, the records skipped are exactly those of ``read_records``.
2. :func:`plan_outputs` decides the split of every record with the same
   de-duplication and stratification as :func:`split_records`, so a corpus
   that fits in memory gets the same train/dev/test as before.
3. :func:`write_outputs` reads the records again and streams each to its
   output's :class:`DocBinWriter` (a file, or a folder of shards past
   ``shard_size`` docs), with the label statistics and the report. Every
   output goes to a temporary name and is renamed only once all are
   complete (:mod:`spacy_mlbert.atomic`): after an error nothing appears under
   the final names and earlier outputs stay as they were.

If the inputs change between the passes, the second pass notices (another
text, or another number of records) and fails with E160.
"""
import contextlib
import hashlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, MutableMapping, Optional, Sequence, Tuple

import numpy
import srsly

from ..atomic import atomic_path
from ..errors import Errors
from .reader import Paths, ReadOptions, iter_records
from .records import ConversionReport, DataError, DuplicateText, PathLike, Record
from .shards import DEFAULT_SHARD_SIZE, DocBinWriter, check_shard_size
from .split import SPLIT_NAMES, parse_ratios, stratified_folds, warn_empty_splits
from .stats import LabelStats, LabelStatsBuilder, write_label_stats
from .stratify import PACK_ROWS, BitMatrix

HASH_BYTES = 16


def text_hash(text: str) -> bytes:
    """RETURNS (bytes): a 128-bit hash of a text, to find duplicates without the texts."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=HASH_BYTES).digest()


class HashedIds(MutableMapping):
    """The record ids a pass has seen, in 8 bytes an id: ``ReadContext.ids``
    for streaming. Only ids whose hash is in ``suspects`` are kept (with their
    location) and can be found again; every id's hash is noted, so that
    :meth:`repeated_hashes` gives the suspects of the next pass.
    """

    def __init__(self, suspects: frozenset = frozenset(), *, note: bool = True) -> None:
        self.suspects = suspects
        self.note = note  # the last pass needs no hashes: it finds no new suspects
        self.exact: Dict[str, str] = {}
        self.hashes = array("q")
        self.count = 0

    def __getitem__(self, record_id: str) -> str:
        if hash(record_id) not in self.suspects:
            raise KeyError(record_id)
        return self.exact[record_id]

    def __setitem__(self, record_id: str, location: str) -> None:
        key = hash(record_id)  # str hashes are fixed within one process
        self.count += 1
        if self.note:
            self.hashes.append(key)
        if key in self.suspects:
            self.exact[record_id] = location

    def __delitem__(self, record_id: str) -> None:
        del self.exact[record_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.exact)

    def __len__(self) -> int:
        return self.count

    def repeated_hashes(self) -> frozenset:
        """RETURNS (frozenset): the hashes seen more than once."""
        keys = numpy.sort(numpy.frombuffer(self.hashes, dtype=numpy.int64))
        return frozenset(int(key) for key in numpy.unique(keys[1:][keys[1:] == keys[:-1]]))


@dataclass
class CorpusIndex:
    """What the split needs of every valid record, in input order, without the texts.

    hashes (bytearray): :func:`text_hash` of each text, 16 bytes each.
    langs (array): each record's language, an index into ``lang_names``.
    n_positives (array): each record's number of positive labels.
    positives (array): the positive labels, record after record, as indices
        into ``label_names``.
    report (ConversionReport): the report of the pass (final label set in
        ``report.labels``).
    suspects (frozenset): id hashes to check exactly in the next pass.
    """

    hashes: bytearray = field(default_factory=bytearray)
    langs: array = field(default_factory=lambda: array("H"))
    n_positives: array = field(default_factory=lambda: array("H"))
    positives: array = field(default_factory=lambda: array("H"))
    lang_names: Dict[str, int] = field(default_factory=dict)
    label_names: Dict[str, int] = field(default_factory=dict)
    report: ConversionReport = field(default_factory=ConversionReport)
    suspects: frozenset = frozenset()

    def __len__(self) -> int:
        return len(self.langs)

    def add(self, record: Record) -> None:
        """Note one record."""
        self.hashes += text_hash(record.text)
        self.langs.append(self.lang_names.setdefault(record.lang, len(self.lang_names)))
        names = self.label_names
        labels = [names.setdefault(label, len(names)) for label, value in record.cats.items() if value == 1.0]
        self.n_positives.append(len(labels))
        self.positives.extend(labels)

    def hash_at(self, index: int) -> bytes:
        """RETURNS (bytes): the text hash of record ``index``."""
        return bytes(self.hashes[index * HASH_BYTES : (index + 1) * HASH_BYTES])

    @property
    def labels(self) -> List[str]:
        """RETURNS (List[str]): the final label set."""
        return self.report.labels

    def first_texts(self) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Which records hold the first occurrence of their text.

        RETURNS (Tuple[numpy.ndarray, numpy.ndarray]): bool arrays: the record
            is the first with its text; the record is the first and a later
            one repeats it.
        """
        n = len(self)
        halves = numpy.frombuffer(self.hashes, dtype=numpy.uint64).reshape(n, 2)
        # sorted by the whole hash (lexsort is stable: equal texts stay in input order)
        order = numpy.lexsort((halves[:, 1], halves[:, 0]))
        same = numpy.zeros(n, dtype=bool)  # same text as the row before, in hash order
        # the first halves decide almost always; the second ones only where they are equal
        candidates = numpy.flatnonzero(numpy.diff(halves[order, 0]) == 0)
        same[candidates + 1] = halves[order[candidates + 1], 1] == halves[order[candidates], 1]
        first = numpy.ones(n, dtype=bool)
        first[order[same]] = False
        repeated = numpy.zeros(n, dtype=bool)
        starts = numpy.flatnonzero(~same)  # each run of one text starts with its first record
        ends = numpy.append(starts[1:], n)
        repeated[order[starts[ends - starts > 1]]] = True
        return first, repeated

    def label_matrix(self, rows: numpy.ndarray) -> BitMatrix:
        """The stratification matrix of :func:`spacy_mlbert.data.split.label_matrix`
        (positives of the label set, then one column per language, sorted),
        for some records.

        rows (numpy.ndarray): bool, the records to include.
        RETURNS (BitMatrix): one row per included record, in input order.
        """
        labels = self.labels
        position = {label: col for col, label in enumerate(labels)}
        label_cols = numpy.array([position[name] for name in self.label_names], dtype=numpy.int64)
        langs = sorted(self.lang_names)
        lang_cols = numpy.empty(len(langs), dtype=numpy.int64)
        for rank, lang in enumerate(langs):
            lang_cols[self.lang_names[lang]] = len(labels) + rank
        n_cols = len(labels) + len(langs)
        counts = numpy.frombuffer(self.n_positives, dtype=numpy.uint16)
        positives = numpy.frombuffer(self.positives, dtype=numpy.uint16)
        lang_of = numpy.frombuffer(self.langs, dtype=numpy.uint16)
        blocks = []
        offset = 0
        for start in range(0, len(self), PACK_ROWS):
            block_counts = counts[start : start + PACK_ROWS].astype(numpy.int64)
            size = len(block_counts)
            used = int(block_counts.sum())
            dense = numpy.zeros((size, n_cols), dtype=bool)
            dense[numpy.repeat(numpy.arange(size), block_counts), label_cols[positives[offset : offset + used]]] = True
            dense[numpy.arange(size), lang_cols[lang_of[start : start + size]]] = True
            offset += used
            blocks.append(numpy.packbits(dense[rows[start : start + size]], axis=1, bitorder="little"))
        packed = numpy.concatenate(blocks) if blocks else numpy.zeros((0, (n_cols + 7) // 8), dtype=numpy.uint8)
        return BitMatrix(packed, n_cols)


def index_corpus(paths: Paths, options: ReadOptions) -> CorpusIndex:
    """Pass 1: validate every record and note what the split needs.

    paths (Paths): the input files or directories.
    options (ReadOptions): how to read them.
    RETURNS (CorpusIndex): the index; raises DataError as ``read_records`` does.
    """
    suspects: frozenset = frozenset()
    while True:
        ids = HashedIds(suspects)
        index = _index_once(paths, options, ids)
        repeated = ids.repeated_hashes()
        if repeated <= suspects:  # every repeat was checked exactly
            index.suspects = suspects
            return index
        # two ids share a hash: read again, keeping those ids themselves
        suspects = repeated


def _index_once(paths: Paths, options: ReadOptions, ids: HashedIds) -> CorpusIndex:
    context = options.context(ids)
    index = CorpusIndex(report=context.report)
    for record in iter_records(paths, fmt=options.fmt, context=context, goemotions_labels=options.goemotions_labels):
        index.add(record)
    context.finish()
    return index


@dataclass
class OutputPlan:
    """Where each record of the index goes.

    names (List[str]): the outputs, e.g. ["train", "dev", "test"].
    target (numpy.ndarray): each record's output (an index into ``names``),
        -1 for a duplicate text that the split removes.
    repeated (numpy.ndarray): whether a kept record's text comes again later.
    sizes (Dict[str, int]): docs per output.
    duplicates (int): records whose text came before (removed with a split).
    """

    names: List[str]
    target: numpy.ndarray
    repeated: numpy.ndarray
    sizes: Dict[str, int]
    duplicates: int


def plan_outputs(
    index: CorpusIndex, ratios: Optional[Sequence[float]], *, seed: int = 0, name: str = "train"
) -> OutputPlan:
    """Decide the output of every record: with ratios, remove the duplicate
    texts and split the rest as :func:`split_records` does; without, all go
    to ``name`` (duplicates kept).

    index (CorpusIndex): the index of pass 1.
    ratios (Optional[Sequence[float]]): the split ratios, or None.
    seed (int): the random seed of the split.
    name (str): the output without a split.
    RETURNS (OutputPlan): the plan.
    """
    first, repeated = index.first_texts()
    duplicates = int(len(first) - first.sum())
    if ratios is None:
        target = numpy.zeros(len(index), dtype=numpy.int8)
        return OutputPlan([name], target, repeated, {name: len(index)}, duplicates)
    shares = parse_ratios(ratios)
    names = list(SPLIT_NAMES[: len(shares)])
    target = numpy.full(len(index), -1, dtype=numpy.int8)
    if first.any():
        target[first] = stratified_folds(index.label_matrix(first), shares, seed=seed)
    counts = numpy.bincount(target[first], minlength=len(names)) if first.any() else numpy.zeros(len(names), int)
    sizes = {split: int(count) for split, count in zip(names, counts)}
    warn_empty_splits(sizes, shares)
    return OutputPlan(names, target, repeated, sizes, duplicates)


@dataclass
class WrittenOutputs:
    """What :func:`write_outputs` wrote.

    paths (Dict[str, Path]): each output's ``.spacy`` file or folder.
    stats (Dict[str, LabelStats]): each output's label statistics.
    duplicates (List[DuplicateText]): the duplicate texts removed.
    labels_path (Path): the label set.
    """

    paths: Dict[str, Path]
    stats: Dict[str, LabelStats]
    duplicates: List[DuplicateText]
    labels_path: Path


def write_outputs(
    paths: Paths,
    options: ReadOptions,
    index: CorpusIndex,
    plan: OutputPlan,
    output_dir: PathLike,
    *,
    stats_dir: Optional[PathLike] = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> WrittenOutputs:
    """Pass 2: stream the records into their outputs, then write labels.json,
    the statistics and convert-report.json; all of them appear together, or
    (on an error) none.

    paths (Paths): the inputs of pass 1.
    options (ReadOptions): the options of pass 1.
    index (CorpusIndex): the index of pass 1; its report gets the duplicates.
    plan (OutputPlan): where the records go.
    output_dir (PathLike): the folder for the ``.spacy`` outputs and labels.json.
    stats_dir (Optional[PathLike]): the folder for statistics and report
        (default: output_dir).
    shard_size (int): the most docs in one ``.spacy`` file.
    RETURNS (WrittenOutputs): the outputs.
    """
    check_shard_size(shard_size)
    output_dir = Path(output_dir)
    stats_dir = Path(stats_dir) if stats_dir is not None else output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stats_dir.mkdir(parents=True, exist_ok=True)
    labels = index.labels
    report = index.report
    final = {split: output_dir / f"{split}.spacy" for split in plan.names}
    with contextlib.ExitStack() as stack:
        temporary = {split: stack.enter_context(atomic_path(path)) for split, path in final.items()}
        writers = [
            DocBinWriter(temporary[split], n_docs=plan.sizes[split], shard_size=shard_size, labels=labels)
            for split in plan.names
        ]
        builders = [LabelStatsBuilder(labels) for _ in plan.names]
        duplicates = _stream(paths, options, index, plan, writers, builders)
        for writer in writers:
            writer.close()
        report.note_duplicates_removed(duplicates)
        stats = {split: builder.build() for split, builder in zip(plan.names, builders)}
        for split, split_stats in stats.items():
            json_tmp = stack.enter_context(atomic_path(stats_dir / f"{split}.stats.json"))
            md_tmp = stack.enter_context(atomic_path(stats_dir / f"{split}.stats.md"))
            write_label_stats(split_stats, json_tmp, md_tmp, title=split)
        labels_path = output_dir / "labels.json"
        srsly.write_json(stack.enter_context(atomic_path(labels_path)), labels)
        srsly.write_json(stack.enter_context(atomic_path(stats_dir / "convert-report.json")), report.to_dict())
    return WrittenOutputs(final, stats, duplicates, labels_path)


def _stream(
    paths: Paths,
    options: ReadOptions,
    index: CorpusIndex,
    plan: OutputPlan,
    writers: List[DocBinWriter],
    builders: List[LabelStatsBuilder],
) -> List[DuplicateText]:
    labels = index.labels
    context = options.context(HashedIds(index.suspects, note=False))
    # kept records whose text comes again: location, id and labels, not the text
    firsts: Dict[bytes, Tuple[str, str, Dict[str, float]]] = {}
    duplicates: List[DuplicateText] = []
    position = -1
    records = iter_records(paths, fmt=options.fmt, context=context, goemotions_labels=options.goemotions_labels)
    for position, record in enumerate(records):
        if position >= len(index) or text_hash(record.text) != index.hash_at(position):
            raise DataError(Errors.E160.format(where=record.location))
        if record.complete:
            record.finalize(labels)
        target = int(plan.target[position])
        if target < 0:
            location, first_id, cats = firsts[index.hash_at(position)]
            duplicates.append(DuplicateText(record.location, location, record.id, first_id, cats == record.cats))
            continue
        if plan.repeated[position]:
            firsts[index.hash_at(position)] = (record.location, record.id, record.cats)
        writers[target].add(record)
        builders[target].add(record)
    if position + 1 != len(index):
        raise DataError(Errors.E160.format(where=", ".join(context.report.files) or "the inputs"))
    return duplicates
