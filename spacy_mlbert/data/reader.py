"""Reading one or more input files of any supported format into records."""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, MutableMapping, Optional, Sequence, Tuple, Union

from ..errors import Errors
from .aliases import LabelAliases, load_aliases
from .goemotions import iter_goemotions_records, load_goemotions_labels
from .jsonl import iter_jsonl_records
from .labels import load_label_list
from .records import ConversionReport, DataError, PathLike, Record
from .semeval import iter_semeval_records
from .validate import ReadContext

logger = logging.getLogger("spacy_mlbert")

FORMATS = ("auto", "jsonl", "semeval", "goemotions")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "semeval", ".tsv": "goemotions"}

Paths = Union[PathLike, Iterable[PathLike]]


def detect_format(path: PathLike, fmt: str = "auto") -> str:
    """The format of an input file, from its suffix unless given.

    path (PathLike): the file.
    fmt (str): "auto", "jsonl", "semeval" or "goemotions".
    RETURNS (str): the format.
    """
    if fmt not in FORMATS:
        hint = f"Choose one of: {', '.join(FORMATS)}."
        raise DataError(Errors.E045.format(path=path, fmt=fmt, hint=hint), path=path)
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(f"{s} ({f})" for s, f in SUFFIX_FORMATS.items())
        hint = f"The format follows the file suffix: {known}. Pass --format (fmt=...) for other names."
        raise DataError(Errors.E045.format(path=path, fmt=fmt, hint=hint), path=path)
    return SUFFIX_FORMATS[suffix]


def expand_inputs(paths: Paths, fmt: str = "auto") -> List[Path]:
    """The input files: files as given, directories replaced by their data files.

    A directory stands for its files (not subdirectories) whose suffix belongs
    to ``fmt`` (any known suffix for "auto"), sorted by name.

    paths (Paths): one path or several.
    fmt (str): the format, to pick the files of a directory.
    RETURNS (List[Path]): the files.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            suffixes = [s for s, f in SUFFIX_FORMATS.items() if fmt in ("auto", f)]
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                problem = f"is a directory without {'/'.join(suffixes)} files"
                raise DataError(Errors.E046.format(path=path, problem=problem), path=path)
            files.extend(found)
        elif not path.exists():
            raise DataError(Errors.E046.format(path=path, problem="does not exist"), path=path)
        else:
            files.append(path)
    if not files:
        raise DataError(Errors.E046.format(path="(none)", problem="is missing: no input was given"))
    return files


def as_aliases(aliases: Union[None, PathLike, LabelAliases, Mapping]) -> Optional[LabelAliases]:
    """RETURNS (Optional[LabelAliases]): aliases from a file, a mapping, or as given."""
    if aliases is None or isinstance(aliases, LabelAliases):
        return aliases
    if isinstance(aliases, Mapping):
        return LabelAliases(aliases)
    return load_aliases(aliases)


def iter_records(
    paths: Paths,
    *,
    fmt: str = "auto",
    context: ReadContext,
    goemotions_labels: Union[None, PathLike, Sequence[str]] = None,
) -> Iterator[Record]:
    """Stream the records of several files through one context.

    paths (Paths): the input files or directories.
    fmt (str): "auto" (by suffix), "jsonl", "semeval" or "goemotions".
    context (ReadContext): the options and state of the conversion.
    goemotions_labels (Union[None, PathLike, Sequence[str]]): the GoEmotions
        labels file, or the names by id; needed for GoEmotions input.
    YIELDS (Record): the valid records, file by file.
    """
    files = expand_inputs(paths, fmt)
    formats = [detect_format(path, fmt) for path in files]  # all before reading any
    names: Optional[List[str]] = None
    if "goemotions" in formats:
        if goemotions_labels is None:
            path = files[formats.index("goemotions")]
            raise DataError(Errors.E042.format(path=path), path=path)
        if isinstance(goemotions_labels, (str, Path)):
            names = load_goemotions_labels(goemotions_labels)
        else:
            names = load_label_list(list(goemotions_labels))
    for path, file_fmt in zip(files, formats):
        logger.info("reading %s as %s", path, file_fmt)
        if file_fmt == "jsonl":
            yield from iter_jsonl_records(path, context=context)
        elif file_fmt == "semeval":
            yield from iter_semeval_records(path, context=context)
        else:
            assert names is not None
            yield from iter_goemotions_records(path, names, context=context)


@dataclass
class ReadOptions:
    """The options of :func:`read_records` (see there), kept together so that
    ``convert`` can read its inputs twice alike."""

    fmt: str = "auto"
    aliases: Any = None
    label_set: Any = None
    add_labels: bool = False
    skip_invalid: bool = False
    lang: Optional[str] = None
    require_labels: bool = True
    goemotions_labels: Any = None
    progress: bool = False

    def context(self, ids: Optional[MutableMapping[str, str]] = None) -> ReadContext:
        """RETURNS (ReadContext): a fresh context (``ids``: see ReadContext)."""
        label_set = self.label_set
        if isinstance(label_set, (str, Path)):
            label_set = load_label_list(label_set)
        return ReadContext(
            aliases=as_aliases(self.aliases),
            label_set=label_set,
            add_labels=self.add_labels,
            skip_invalid=self.skip_invalid,
            lang=self.lang,
            require_labels=self.require_labels,
            progress=self.progress,
            ids=ids,
        )


def read_records(
    paths: Paths,
    *,
    fmt: str = "auto",
    aliases: Union[None, PathLike, LabelAliases, Mapping] = None,
    label_set: Union[None, PathLike, Sequence[str]] = None,
    add_labels: bool = False,
    skip_invalid: bool = False,
    lang: Optional[str] = None,
    require_labels: bool = True,
    goemotions_labels: Union[None, PathLike, Sequence[str]] = None,
    progress: bool = False,
) -> Tuple[List[Record], ConversionReport]:
    """Read and validate input files into records with their final labels.

    paths (Paths): input files or directories (their data files, sorted).
    fmt (str): "auto" (by suffix: .jsonl/.ndjson, .csv, .tsv), "jsonl",
        "semeval" or "goemotions".
    aliases (Union[None, PathLike, LabelAliases, Mapping]): an alias file or table.
    label_set (Union[None, PathLike, Sequence[str]]): the canonical labels (a
        list, a label file or "a,b,c"); None infers them from the data in
        order of first appearance.
    add_labels (bool): add labels outside ``label_set`` instead of erroring.
    skip_invalid (bool): skip invalid records, noting them in the report.
    lang (Optional[str]): the language of records whose data names none.
    require_labels (bool): False accepts JSONL records without labels or cats.
    goemotions_labels (Union[None, PathLike, Sequence[str]]): GoEmotions label names.
    progress (bool): show progress bars for large files on a terminal.
    RETURNS (Tuple[List[Record], ConversionReport]): the records, each with all
        its known labels in ``cats``, and the report (``report.labels`` is the
        final label set).
    """
    options = ReadOptions(
        fmt=fmt,
        aliases=aliases,
        label_set=label_set,
        add_labels=add_labels,
        skip_invalid=skip_invalid,
        lang=lang,
        require_labels=require_labels,
        goemotions_labels=goemotions_labels,
        progress=progress,
    )
    context = options.context()
    records = list(iter_records(paths, fmt=fmt, context=context, goemotions_labels=goemotions_labels))
    labels = context.finish()
    for record in records:
        if record.complete:
            record.finalize(labels)
    if context.labels.added:
        logger.warning("added label(s) outside the label set: %s", ", ".join(context.labels.added))
    return records, context.report
