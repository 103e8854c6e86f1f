"""The input of a Ray run: finding the files, cutting them into blocks at
multiples of the batch size, and reading a block (JSONL by byte range,
Parquet by row range) back as lines."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import numpy

from ...errors import Errors


JSONL = "jsonl"


PARQUET = "parquet"


PARQUET_SUFFIXES = (".parquet", ".pq")


INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson") + PARQUET_SUFFIXES


SCAN_CHUNK = 1 << 22


@dataclass
class Source:
    """One input file: index (in shard names), path as given, format, lines (or rows)."""

    index: int
    path: Path
    format: str
    lines: int = 0


def find_sources(input_path: Union[str, Path]) -> List[Source]:
    """The input files: the file itself, or the JSONL/Parquet files under a folder.

    input_path (Union[str, Path]): A .jsonl or .parquet file, or a folder of them.
    RETURNS (List[Source]): The files, sorted by path.
    """
    path = Path(input_path)
    if not path.exists():
        raise ValueError(Errors.E059.format(what="Input file", path=path, problem="does not exist"))
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in INPUT_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            suffixes = ", ".join(INPUT_SUFFIXES)
            raise ValueError(Errors.E095.format(path=path, problem=f"holds no input file ({suffixes})"))
    sources = []
    for index, file in enumerate(files):
        fmt = PARQUET if file.suffix.lower() in PARQUET_SUFFIXES else JSONL
        if fmt == PARQUET:
            _import_pyarrow(file)
        sources.append(Source(index, file, fmt))
    return sources


def _import_pyarrow(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            Errors.E095.format(path=path, problem="is Parquet, which needs pyarrow: pip install pyarrow")
        ) from None
    return pq


def plan_blocks(sources: Sequence[Source], block_size: int) -> List[Dict[str, Any]]:
    """Cut the inputs into blocks of ``block_size`` lines; sets each source's line count.

    sources (Sequence[Source]): From find_sources.
    block_size (int): Lines per block.
    RETURNS (List[Dict[str, Any]]): One row per block: source, path, format,
        first (line number), start and end (byte offsets for JSONL, row
        offsets for Parquet).
    """
    blocks: List[Dict[str, Any]] = []
    for source in sources:
        if source.format == PARQUET:
            pq = _import_pyarrow(source.path)
            try:
                n_rows = pq.ParquetFile(str(source.path)).metadata.num_rows
            except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
                raise ValueError(Errors.E095.format(path=source.path, problem=f"is not a Parquet file: {err}")) from err
            cuts = list(range(0, n_rows, block_size)) + [n_rows]
            source.lines = n_rows
        else:
            cuts, source.lines = _jsonl_cuts(source.path, block_size)
        for i, (start, end) in enumerate(zip(cuts, cuts[1:])):
            blocks.append(
                {
                    "source": source.index,
                    "path": str(source.path),
                    "format": source.format,
                    "first": i * block_size + 1,
                    "start": start,
                    "end": end,
                }
            )
    return blocks


def _jsonl_cuts(path: Path, block_size: int) -> Tuple[List[int], int]:
    """Byte offsets where the blocks start (plus the file size), and the line count.

    Lines end at "\\n" only, as when the local engine reads the file.
    """
    cuts = [0]
    newlines = 0
    offset = 0
    last = b"\n"
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(SCAN_CHUNK), b""):
            ends = numpy.flatnonzero(numpy.frombuffer(chunk, dtype=numpy.uint8) == 10)
            # the newline that ends line k*block_size closes a block
            first_cut = (-newlines - 1) % block_size
            for i in range(first_cut, len(ends), block_size):
                cuts.append(offset + int(ends[i]) + 1)
            newlines += len(ends)
            offset += len(chunk)
            last = chunk[-1:]
    lines = newlines + int(last != b"\n")
    if cuts[-1] != offset:
        cuts.append(offset)
    return cuts, lines


def _split_lines(data: bytes) -> List[bytes]:
    lines = [part + b"\n" for part in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def _json_default(value: Any) -> Any:
    """Parquet values that JSON has no type for: dates as ISO strings, bytes
    as text (or hex), decimals as strings, NumPy scalars as Python values."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        try:
            return value.decode("utf8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, numpy.generic):
        return value.item()
    return str(value)


def _read_parquet_rows(path: str, start: int, end: int) -> List[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    groups: List[int] = []
    group_start = offset = 0
    for i in range(parquet.metadata.num_row_groups):
        n = parquet.metadata.row_group(i).num_rows
        if offset + n > start and offset < end:
            if not groups:
                group_start = offset
            groups.append(i)
        offset += n
    table = parquet.read_row_groups(groups) if groups else pa.table({})
    rows = table.slice(start - group_start, end - start).to_pylist()
    return [(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n").encode("utf8") for row in rows]


def read_block(batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
    """The lines of each block as rows (source, line, raw).

    batch (Dict[str, numpy.ndarray]): Block rows from plan_blocks.
    RETURNS (Dict[str, numpy.ndarray]): One row per input line.
    """
    sources: List[int] = []
    lines: List[int] = []
    raws: List[bytes] = []
    for source, path, fmt, first, start, end in zip(
        batch["source"], batch["path"], batch["format"], batch["first"], batch["start"], batch["end"]
    ):
        if str(fmt) == PARQUET:
            block = _read_parquet_rows(str(path), int(start), int(end))
        else:
            with open(str(path), "rb") as file_:
                file_.seek(int(start))
                block = _split_lines(file_.read(int(end) - int(start)))
        sources.extend([int(source)] * len(block))
        lines.extend(range(int(first), int(first) + len(block)))
        raws.extend(block)
    raw_column = numpy.empty(len(raws), dtype=object)
    raw_column[:] = raws
    return {
        "source": numpy.asarray(sources, dtype=numpy.int64),
        "line": numpy.asarray(lines, dtype=numpy.int64),
        "raw": raw_column,
    }


def runs(batch: Dict[str, numpy.ndarray]) -> Iterator[Tuple[int, List[int], List[bytes]]]:
    """Split a batch into runs of consecutive lines of one source."""
    sources, lines, raws = batch["source"], batch["line"], batch["raw"]
    begin = 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or sources[i] != sources[begin] or lines[i] != lines[i - 1] + 1:
            yield int(sources[begin]), [int(n) for n in lines[begin:i]], [bytes(r) for r in raws[begin:i]]
            begin = i
