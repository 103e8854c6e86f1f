"""The Ray engine: annotate and evaluate corpora on a pool of Ray actors.

How a run goes (``annotate_ray``):

1. The driver scans the input once (newlines only, or Parquet metadata) and
   cuts it into blocks of ``block_batches * batch_size`` lines. Blocks start
   at multiples of ``batch_size``, so the line windows that go through
   ``nlp.pipe`` together are the same as the local engine's, and so are the
   probabilities, to the last bit (see spacy_mlbert.annotate.jsonl).
2. Ray Data hands the blocks to an actor pool (``map_batches`` with a
   callable class, ``concurrency`` actors, ``num_cpus``/``num_gpus`` each)
   whose actors load the pipeline once. Each call reads one block (JSONL by
   byte range, Parquet by row range), validates its lines exactly as the
   local engine does, runs the windows through ``nlp.pipe`` and writes the
   block's shard,
   ``part-<source>-<first line>.jsonl`` (and ``.parquet`` when asked), under a
   temporary name that is renamed when complete. It returns a small summary.
   (The actors read their blocks themselves: as a separate Ray Data step,
   each read task started a fresh worker process on a busy node, importing
   spaCy and torch to read a few kilobytes.)
3. The driver collects the summaries, checks that every input line is
   accounted for exactly once, removes what killed attempts left behind,
   writes ``failures.jsonl`` and ``manifest.json`` and moves the folder into
   place. An error leaves nothing behind.

Faults: actors are restarted (``max_restarts``) and their calls retried
(``max_task_retries``). A retried call writes the same shard names with the
same content, so a retry can neither lose nor duplicate records. A record the
pipeline fails on is retried alone and then reported in failures.jsonl with
its line, id and reason; invalid lines are reported the same way with
``skip_invalid`` and stop the run (with the local engine's message) without.

On several machines, the model, the input and the output folder must be on a
file system every node sees at the same path, and every node needs the same
Python environment (spacy-mlbert with the ``ray`` extra).
"""
import inspect
import json
import logging
import os
import shutil
import socket
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import numpy
import srsly
from tqdm import tqdm

from ..jsonl import (
    MAX_REASONS,
    _Record,
    _windows,
    _dumps,
    check_output_keys,
    format_record,
    parse_line,
    predict_text,
)
from ...errors import Errors
from ...evaluation.evaluate import (
    DEFAULT_BATCH_SIZE,
    PredictionArrays,
    check_batch_size,
    find_textcat,
    load_pipeline,
    read_gold_docs,
)
from ...evaluation.gold import GoldCollector, check_files, probabilities

logger = logging.getLogger("spacy_mlbert")

MANIFEST = "manifest.json"
FAILURES = "failures.jsonl"
MANIFEST_FORMAT = "spacy-mlbert.annotations.v1"
JSONL = "jsonl"
PARQUET = "parquet"
PARQUET_SUFFIXES = (".parquet", ".pq")
INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson") + PARQUET_SUFFIXES
# Batches per block: a block is read, annotated and written as one shard.
DEFAULT_BLOCK_BATCHES = 16
DEFAULT_MAX_RESTARTS = 3
DEFAULT_MAX_TASK_RETRIES = 3
# Ray only keeps to the loopback address when it believes it runs on one
# machine (its macOS/Windows mode); see _loopback_only.
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_WORKER_NICENESS_ENV = "RAY_worker_niceness"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_SCAN_CHUNK = 1 << 22


class RayNotInstalled(ImportError):
    """Ray Data is missing; the message (E091) says how to install it."""


def import_ray() -> Any:
    """Import Ray with Ray Data, or raise RayNotInstalled (E091).

    RETURNS (module): The ``ray`` module.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        # a missing module is the common case; anything else (a broken
        # install) is shown, as it needs another fix
        missing = isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == "ray"
        detail = "" if missing else f" ({err})"
        raise RayNotInstalled(Errors.E091.format(detail=detail)) from None
    return ray


# ---------------------------------------------------------------- the session


def _is_loopback(address: Optional[str]) -> bool:
    if address is None:
        return True
    host = address.rsplit(":", 1)[0] if ":" in address.strip("[]") or address.startswith("[") else address
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


@contextmanager
def _loopback_only(ray: Any) -> Iterator[None]:
    """Keep a Ray on this machine to 127.0.0.1, and its workers at this
    process's priority.

    On Linux, Ray replaces 127.0.0.1 by the machine's network address, which
    makes a local Ray listen on every interface and a loopback address
    unreachable. In its single-machine mode (the default on macOS and
    Windows) it keeps to the loopback address. Ray also lowers its workers'
    priority (niceness +15) to keep its own processes responsive; here the
    workers do all the work, and on a busy machine they would starve. A
    RAY_worker_niceness set by the user is kept.
    """
    env = {_SINGLE_MACHINE_ENV: "0"}
    if _WORKER_NICENESS_ENV not in os.environ:
        env[_WORKER_NICENESS_ENV] = "0"
    saved_env = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # inherited by the processes Ray starts
    constants: Any = None
    saved = None
    try:
        # read when Ray is imported: set it for this process as well
        from ray._private import ray_constants as constants
    except ImportError:  # a Ray without it keeps to the environment variable
        constants = None
    if constants is not None:
        saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if constants is not None and saved is not None:
            constants.ENABLE_RAY_CLUSTER = saved
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def ray_session(address: Optional[str] = None) -> Iterator[Any]:
    """Connect to Ray for one run, and disconnect afterwards.

    A Ray already initialised in this process is used as it is (and left
    running). Otherwise ``address`` names a cluster ("auto", "HOST:PORT" or
    "ray://HOST:PORT"), or, when None, a local Ray is started on the fly on
    127.0.0.1 with no dashboard, and stopped at the end.

    address (Optional[str]): The cluster, or None for a local Ray.
    YIELDS (module): The ``ray`` module, initialised.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    action = "start a local" if address is None else "connect to"
    where = "" if address is None else f" at '{address}'"
    kwargs: Dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        kwargs["include_dashboard"] = False
    else:
        kwargs["address"] = address
    try:
        if _is_loopback(address) and not str(address or "").startswith("ray://"):
            with _loopback_only(ray):
                ray.init(**kwargs)
        else:
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, OSError) as err:
        raise ValueError(Errors.E096.format(action=action, where=where, detail=err)) from err
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def _quiet_data_context(ray: Any) -> Iterator[Any]:
    """Ray Data's own progress bars off (the driver shows one bar), restored after."""
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars
    context.enable_progress_bars = False
    try:
        yield context
    finally:
        context.enable_progress_bars = saved


# ---------------------------------------------------------------- settings


@dataclass
class RaySettings:
    """How a run uses Ray; the same for annotate and evaluate.

    address (Optional[str]): Cluster address ("auto", "HOST:PORT",
        "ray://HOST:PORT"), or None to start a local Ray.
    actors (Optional[int]): Actors in the pool; None: as many as the
        cluster's CPUs (or GPUs, with num_gpus) allow, at most one per block.
    num_cpus (float): CPUs per actor (also torch's thread count).
    num_gpus (float): GPUs per actor (0: none).
    batch_size (int): Lines (documents) per nlp.pipe batch.
    block_batches (int): Batches per block: the unit of reading, retrying and
        (for annotate) of one shard.
    max_restarts (int): Restarts of a killed actor (-1: no limit).
    max_task_retries (int): Retries of a call whose actor died (-1: no limit).
    progress (bool): Show a progress bar on stderr.
    """

    address: Optional[str] = None
    actors: Optional[int] = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = DEFAULT_BATCH_SIZE
    block_batches: int = DEFAULT_BLOCK_BATCHES
    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_task_retries: int = DEFAULT_MAX_TASK_RETRIES
    progress: bool = True

    def check(self) -> None:
        """Raise a coded error for an invalid value."""
        check_batch_size(self.batch_size)
        _check_int("block_batches", self.block_batches, minimum=1)
        if self.actors is not None:
            _check_int("actors", self.actors, minimum=1)
        _check_int("max_restarts", self.max_restarts, minimum=-1)
        _check_int("max_task_retries", self.max_task_retries, minimum=-1)
        for option, value in (("num_cpus", self.num_cpus), ("num_gpus", self.num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(Errors.E090.format(option=option, expected="a number >= 0", value=value))
        if self.num_cpus == 0 and self.num_gpus == 0:
            raise ValueError(
                Errors.E090.format(option="num_cpus", expected="above 0 when num_gpus is 0", value=self.num_cpus)
            )
        if self.address is not None and not str(self.address).strip():
            raise ValueError(Errors.E090.format(option="address", expected="an address", value=self.address))

    @property
    def block_size(self) -> int:
        """Lines (documents) per block: a multiple of the batch size."""
        return self.batch_size * self.block_batches

    def to_dict(self) -> Dict[str, Any]:
        return {
            "address": self.address,
            "actors": self.actors,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "batch_size": self.batch_size,
            "block_batches": self.block_batches,
            "block_size": self.block_size,
            "max_restarts": self.max_restarts,
            "max_task_retries": self.max_task_retries,
        }


def _check_int(option: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(Errors.E090.format(option=option, expected=f"an integer >= {minimum}", value=value))


def _pool_size(ray: Any, settings: RaySettings, n_blocks: int) -> int:
    if settings.actors is not None:
        return settings.actors
    resources = ray.cluster_resources()
    if settings.num_gpus > 0:
        fit = resources.get("GPU", 0) // settings.num_gpus
    else:
        fit = resources.get("CPU", 1) // settings.num_cpus
    return max(1, min(int(fit), n_blocks))


def _map_batches_args(ray: Any, settings: RaySettings, concurrency: int) -> Dict[str, Any]:
    """The actor pool's arguments to Dataset.map_batches."""
    args: Dict[str, Any] = {
        # one block per call: its windows stay whole (see the module docstring)
        "batch_size": 1,
        "batch_format": "numpy",
        "compute": ray.data.ActorPoolStrategy(size=concurrency),
        "num_cpus": settings.num_cpus,
    }
    if settings.num_gpus:
        args["num_gpus"] = settings.num_gpus
    parameters = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        # actor options go through map_batches' **ray_remote_args (deprecated
        # from Ray 2.60 on, where the pool restarts and retries without limit
        # unless told otherwise)
        args["max_restarts"] = settings.max_restarts
        args["max_task_retries"] = settings.max_task_retries
    else:
        logger.info("This Ray takes no actor options; its own restart and retry defaults apply.")
    return args


@contextmanager
def _no_remote_args_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        yield


def _limit_threads(num_cpus: float) -> None:
    """One torch thread per CPU the actor holds: actors sharing a machine
    would otherwise each start a thread per core and slow each other down."""
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))


def _actor_info(started: float, load_s: float) -> Dict[str, Any]:
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    return {"pid": os.getpid(), "host": socket.gethostname(), "node": node, "started": started, "load_s": load_s}


def _ray_error_types(ray: Any) -> Tuple[Type[BaseException], ...]:
    return (ray.exceptions.RayError,)


# ---------------------------------------------------------------- the input


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
        for chunk in iter(lambda: file_.read(_SCAN_CHUNK), b""):
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


def _runs(batch: Dict[str, numpy.ndarray]) -> Iterator[Tuple[int, List[int], List[bytes]]]:
    """Split a batch into runs of consecutive lines of one source."""
    sources, lines, raws = batch["source"], batch["line"], batch["raw"]
    begin = 0
    for i in range(1, len(lines) + 1):
        if i == len(lines) or sources[i] != sources[begin] or lines[i] != lines[i - 1] + 1:
            yield int(sources[begin]), [int(n) for n in lines[begin:i]], [bytes(r) for r in raws[begin:i]]
            begin = i


def _record_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None


def shard_name(source: int, first_line: int) -> str:
    """The name (without suffix) of the shard that starts at ``first_line`` of
    input ``source``: names sort in input order."""
    return f"part-{source:05d}-{first_line:012d}"


def _write_atomic(path: Path, write: Any) -> None:
    """Write to a temporary name and rename: a reader (or a retry) sees the
    whole file or none of it."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------- the actors


def _load_into_actor(actor: Any, model_path: str, options: Dict[str, Any]):
    """What both actors do first: limit threads, load the pipeline once and
    note how long that took; sets ``nlp``, ``info`` and ``labels``.

    RETURNS: The pipeline's mlbert_textcat component.
    """
    started = time.time()
    _limit_threads(options["num_cpus"])
    actor.nlp = load_pipeline(model_path)
    actor.info = _actor_info(started, time.time() - started)
    _, textcat = find_textcat(actor.nlp)
    actor.labels = list(textcat.labels)
    return textcat


class RayAnnotator:
    """The actor that annotates blocks: loads the pipeline once, then each
    call validates, predicts and writes one shard per block.

    model_path (str): The pipeline, on a path every node sees.
    options (Dict[str, Any]): sources (paths as given), out_dir, batch_size,
        skip_invalid, cats_key, labels_key, parquet, num_cpus.
    """

    def __init__(self, model_path: str, options: Dict[str, Any]) -> None:
        textcat = _load_into_actor(self, model_path, options)
        self.thresholds = {label: float(value) for label, value in textcat.thresholds.items()}
        self.options = options
        self.sources = [Path(path) for path in options["sources"]]
        self.out_dir = Path(options["out_dir"])

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        summaries = [json.dumps(self.annotate_run(*run)) for run in _runs(read_block(batch))]
        column = numpy.empty(len(summaries), dtype=object)
        column[:] = summaries
        return {"summary": column}

    def annotate_run(self, source: int, lines: List[int], raws: List[bytes]) -> Dict[str, Any]:
        """Annotate consecutive lines of one input and write their shard.

        source (int): The input's index.
        lines (List[int]): The line numbers.
        raws (List[bytes]): The lines.
        RETURNS (Dict[str, Any]): The summary (counts, failures, shard names).
        """
        began = time.time()
        opts = self.options
        path = self.sources[source]
        summary: Dict[str, Any] = {
            "source": source,
            "first": lines[0],
            "last": lines[-1],
            "read": len(lines),
            "written": 0,
            "skipped": 0,
            "blank": 0,
            "failed": 0,
            "failures": [],
            "fatal": None,
            "fatal_line": None,
            "jsonl": None,
            "parquet": None,
            "labels": self.labels,
            "thresholds": self.thresholds,
            "actor": self.info,
        }
        valid: List[_Record] = []
        for number, raw in zip(lines, raws):
            line = parse_line(path, number, raw)
            if line.problem is not None or line.record is None:
                if not (line.blank or opts["skip_invalid"]):
                    summary["fatal"], summary["fatal_line"] = line.problem, number
                    return summary
                summary["skipped"] += 1
                summary["blank"] += int(line.blank)
                kind = "blank" if line.blank else "invalid"
                summary["failures"].append(
                    {"line": number, "id": _record_id(line.record), "kind": kind, "reason": line.problem}
                )
                continue
            try:
                check_output_keys(line.record, path, number, opts["cats_key"], opts["labels_key"])
            except ValueError as err:
                summary["fatal"], summary["fatal_line"] = str(err), number
                return summary
            valid.append((number, line.record, predict_text(line.record)))
        results: List[Tuple[int, Dict[str, Any], str]] = []
        for window in _windows(valid, opts["batch_size"]):
            for (number, record, _), doc in zip(window, self._predict(window, summary)):
                if doc is not None:
                    line_text = format_record(record, doc, self.labels, opts["cats_key"], opts["labels_key"])
                    results.append((number, record, line_text))
        summary["written"] = len(results)
        if results:
            name = shard_name(source, lines[0])
            summary["jsonl"] = f"{name}.jsonl"
            _write_atomic(self.out_dir / summary["jsonl"], lambda tmp: _write_jsonl(tmp, results))
            if opts["parquet"]:
                summary["parquet"] = f"{name}.parquet"
                _write_atomic(
                    self.out_dir / summary["parquet"],
                    lambda tmp: _write_parquet(tmp, source, results, self.labels, opts),
                )
        summary["seconds"] = time.time() - began
        return summary

    def _predict(self, window: List[_Record], summary: Dict[str, Any]) -> List[Any]:
        """The window's documents; None for a record the pipeline fails on."""
        texts = [text for _, _, text in window]
        try:
            return list(self.nlp.pipe(texts, batch_size=len(texts)))
        # one bad text must not stop a corpus run: find it below and report it
        except Exception:  # noqa: BLE001
            logger.warning("A batch failed at line %d; retrying its records one by one.", window[0][0])
        docs: List[Any] = []
        for number, record, text in window:
            try:
                docs.append(next(iter(self.nlp.pipe([text], batch_size=1))))
            except Exception as err:  # noqa: BLE001 (reported with the record)
                docs.append(None)
                summary["failed"] += 1
                reason = f"{type(err).__name__}: {err}"
                summary["failures"].append({"line": number, "id": _record_id(record), "kind": "failed", "reason": reason})
        return docs


def _write_jsonl(path: Path, results: List[Tuple[int, Dict[str, Any], str]]) -> None:
    with path.open("x", encoding="utf8", newline="\n") as out:
        for _, _, line_text in results:
            out.write(line_text + "\n")


def _write_parquet(
    path: Path,
    source: int,
    results: List[Tuple[int, Dict[str, Any], str]],
    labels: List[str],
    opts: Dict[str, Any],
) -> None:
    """One Parquet shard with a fixed schema: source, line, id, text, the
    probabilities (a struct with a field per label), the labels, and the whole
    output record as JSON (input fields can be of any type, so they are kept
    there rather than as columns whose types could differ between shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cats_key, labels_key = opts["cats_key"], opts["labels_key"]
    schema = pa.schema(
        [
            ("source", pa.int32()),
            ("line", pa.int64()),
            ("id", pa.string()),
            ("text", pa.string()),
            (cats_key, pa.struct([(label, pa.float64()) for label in labels])),
            (labels_key, pa.list_(pa.string())),
            ("json", pa.string()),
        ]
    )
    columns = {
        "source": [source] * len(results),
        "line": [number for number, _, _ in results],
        "id": [None if record.get("id") is None else str(record["id"]) for _, record, _ in results],
        "text": [record["text"] for _, record, _ in results],
        cats_key: [record[cats_key] for _, record, _ in results],
        labels_key: [record[labels_key] for _, record, _ in results],
        "json": [line_text for _, _, line_text in results],
    }
    pq.write_table(pa.table(columns, schema=schema), str(path))


# ---------------------------------------------------------------- annotate


def annotate_ray(
    model_path: Union[str, Path],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    settings: Optional[RaySettings] = None,
    skip_invalid: bool = False,
    cats_key: str = "cats",
    labels_key: str = "labels",
    parquet: bool = False,
    annotator_cls: Optional[Type[RayAnnotator]] = None,
) -> Dict[str, Any]:
    """Annotate JSONL (or Parquet) input on Ray; write sharded JSONL and a manifest.

    model_path (Union[str, Path]): The pipeline (a folder every node sees, or
        an installed package name).
    input_path (Union[str, Path]): A JSONL or Parquet file, or a folder of them.
    output_dir (Union[str, Path]): Folder for the shards, failures.jsonl and
        manifest.json; replaced when the run succeeds.
    settings (Optional[RaySettings]): Cluster, pool and batch settings.
    skip_invalid (bool): Skip (and report) invalid lines instead of stopping.
    cats_key (str): Output field for the probabilities.
    labels_key (str): Output field for the thresholded labels.
    parquet (bool): Write a Parquet file next to each JSONL shard.
    annotator_cls (Optional[Type[RayAnnotator]]): The actor class (a subclass
        of RayAnnotator, importable on the workers).
    RETURNS (Dict[str, Any]): The manifest (also in output_dir/manifest.json).
    """
    settings = settings or RaySettings()
    settings.check()
    if cats_key == labels_key:
        raise ValueError(Errors.E064.format(key=cats_key))
    began = time.time()
    model = _model_ref(model_path)
    sources = find_sources(input_path)
    out_dir = Path(output_dir)
    _check_output_dir(out_dir, sources)
    import_ray()  # before the input is scanned: say at once that Ray is missing
    blocks = plan_blocks(sources, settings.block_size)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp_dir.mkdir()
    options = {
        "sources": [str(source.path) for source in sources],
        "out_dir": str(tmp_dir.resolve()),
        "batch_size": settings.batch_size,
        "skip_invalid": skip_invalid,
        "cats_key": cats_key,
        "labels_key": labels_key,
        "parquet": parquet,
        "num_cpus": settings.num_cpus,
    }
    try:
        collected = _Collected()
        ray_info: Dict[str, Any] = {"version": None, "nodes": 0, "actors": 0}  # an empty input needs no Ray
        if blocks:
            with ray_session(settings.address) as ray:
                concurrency = _pool_size(ray, settings, len(blocks))
                ray_info = {"version": ray.__version__, "nodes": len(ray.nodes()), "actors": concurrency}
                with _quiet_data_context(ray):
                    dataset = ray.data.from_items(blocks, override_num_blocks=len(blocks))
                    with _no_remote_args_warning():
                        dataset = dataset.map_batches(
                            annotator_cls or RayAnnotator,
                            fn_constructor_args=(model, options),
                            **_map_batches_args(ray, settings, concurrency),
                        )
                    total = sum(source.lines for source in sources)
                    _collect(ray, dataset, collected, total, settings.progress, began)
        if collected.fatal is not None:
            raise ValueError(collected.fatal[2])
        _check_complete(collected, sources, input_path)
        manifest = _finish_output(
            tmp_dir, collected, sources, model, settings, ray_info, began,
            skip_invalid=skip_invalid, cats_key=cats_key, labels_key=labels_key, parquet=parquet,
        )
        _replace_dir(tmp_dir, out_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    counts = manifest["counts"]
    if counts["skipped"] or counts["failed"]:
        logger.info(
            "Skipped %d and failed %d of %d line(s) (%d blank); see '%s'.",
            counts["skipped"], counts["failed"], counts["read"], counts["blank"], out_dir / FAILURES,
        )
    return manifest


class _Collected:
    """What the driver gathers from the summaries."""

    def __init__(self) -> None:
        self.runs: Dict[Tuple[int, int], Dict[str, Any]] = {}
        self.duplicates = 0
        self.fatal: Optional[Tuple[int, int, str]] = None
        self.actors: Dict[Tuple[str, int], Dict[str, Any]] = {}
        self.labels: List[str] = []
        self.thresholds: Dict[str, float] = {}
        self.started = time.time()

    def add(self, summary: Dict[str, Any]) -> int:
        """Keep a summary; RETURNS (int): the lines it accounts for (0 for a repeat)."""
        actor = summary.pop("actor")
        key = (actor["host"], actor["pid"])
        stats = self.actors.setdefault(
            key,
            {
                "host": actor["host"],
                "node": actor.get("node"),
                "pid": actor["pid"],
                "startup_s": round(actor["started"] - self.started, 3),
                "load_s": round(actor["load_s"], 3),
                "blocks": 0,
                "lines": 0,
                "busy_s": 0.0,
            },
        )
        self.labels = summary.pop("labels")
        self.thresholds = summary.pop("thresholds")
        if summary["fatal"] is not None:
            fatal = (summary["source"], summary["fatal_line"], summary["fatal"])
            if self.fatal is None or fatal[:2] < self.fatal[:2]:
                self.fatal = fatal
            return 0
        run_key = (summary["source"], summary["first"])
        if run_key in self.runs:
            # a retried call that was counted already: the same shard, rewritten
            previous = self.runs[run_key]
            if (previous["last"], previous["written"]) != (summary["last"], summary["written"]):
                raise ValueError(
                    Errors.E097.format(
                        path=summary["source"],
                        problem=f"two different results for line {summary['first']} of input {summary['source']}",
                    )
                )
            self.duplicates += 1
            return 0
        self.runs[run_key] = summary
        stats["blocks"] += 1
        stats["lines"] += summary["read"]
        stats["busy_s"] = round(stats["busy_s"] + summary.get("seconds", 0.0), 3)
        return int(summary["read"])


def _collect(ray: Any, dataset: Any, collected: _Collected, total: int, progress: bool, began: float) -> None:
    """Run the dataset and gather its summaries; stop at the first fatal line."""
    collected.started = began
    with tqdm(total=total, unit="line", desc="Annotating on Ray", disable=not progress, leave=False) as bar:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for text in batch["summary"]:
                    bar.update(collected.add(json.loads(text)))
                bar.set_postfix(actors=len(collected.actors), refresh=False)
                if collected.fatal is not None:
                    # the run cannot succeed: stop the pool instead of finishing
                    break
        except _ray_error_types(ray) as err:
            raise ValueError(Errors.E098.format(detail=_short(err))) from err


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


def _check_complete(collected: _Collected, sources: Sequence[Source], input_path: Union[str, Path]) -> None:
    """Every line of every input in exactly one run, in order."""
    by_source: Dict[int, List[Dict[str, Any]]] = {}
    for (source, _), run in sorted(collected.runs.items()):
        by_source.setdefault(source, []).append(run)
    for source in sources:
        expected = 1
        for run in by_source.get(source.index, []):
            if run["first"] != expected:
                problem = "lines missing" if run["first"] > expected else "lines counted twice"
                raise ValueError(
                    Errors.E097.format(path=input_path, problem=f"{problem} at line {expected} of '{source.path}'")
                )
            expected = run["last"] + 1
        if expected - 1 != source.lines:
            raise ValueError(
                Errors.E097.format(
                    path=input_path,
                    problem=f"{expected - 1} of the {source.lines} line(s) of '{source.path}' came back",
                )
            )


def _finish_output(
    tmp_dir: Path,
    collected: _Collected,
    sources: Sequence[Source],
    model: str,
    settings: RaySettings,
    ray_info: Dict[str, Any],
    began: float,
    **options: Any,
) -> Dict[str, Any]:
    """Check the shards, remove leftovers, write failures.jsonl and manifest.json."""
    runs = [collected.runs[key] for key in sorted(collected.runs)]
    shards: List[Dict[str, Any]] = []
    expected_files = {MANIFEST, FAILURES}
    for run in runs:
        if not run["jsonl"]:
            continue
        path = tmp_dir / run["jsonl"]
        if not path.is_file() or _count_newlines(path) != run["written"]:
            raise ValueError(
                Errors.E097.format(path=sources[run["source"]].path, problem=f"shard {run['jsonl']} is incomplete")
            )
        expected_files.update(name for name in (run["jsonl"], run["parquet"]) if name)
        shards.append(
            {
                "jsonl": run["jsonl"],
                "parquet": run["parquet"],
                "source": run["source"],
                "first_line": run["first"],
                "last_line": run["last"],
                "records": run["written"],
            }
        )
    for leftover in tmp_dir.iterdir():
        # temporary files of attempts that were killed, which Ray retried
        if leftover.name not in expected_files:
            logger.debug("Removing '%s', left by a retried attempt.", leftover)
            leftover.unlink()
    failures = [dict(failure, source=run["source"]) for run in runs for failure in run["failures"]]
    with (tmp_dir / FAILURES).open("w", encoding="utf8", newline="\n") as out:
        for failure in failures:
            out.write(_dumps(failure) + "\n")
    counts = {key: sum(run[key] for run in runs) for key in ("read", "written", "skipped", "blank", "failed")}
    seconds = time.time() - began
    manifest = {
        "format": MANIFEST_FORMAT,
        "engine": "ray",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": _model_info(model, collected),
        "inputs": [{"path": str(s.path), "format": s.format, "lines": s.lines} for s in sources],
        "settings": dict(settings.to_dict(), **options),
        "counts": counts,
        "shards": shards,
        "failures": {"file": FAILURES, "count": len(failures), "first": failures[:MAX_REASONS]},
        "ray": dict(ray_info, actor_stats=list(collected.actors.values()), repeated_results=collected.duplicates),
        "seconds": round(seconds, 3),
        "docs_per_second": round(counts["written"] / seconds, 2) if seconds > 0 else None,
    }
    srsly.write_json(tmp_dir / MANIFEST, manifest)
    return manifest


def _count_newlines(path: Path) -> int:
    count = 0
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(_SCAN_CHUNK), b""):
            count += chunk.count(b"\n")
    return count


def _model_ref(model_path: Union[str, Path]) -> str:
    """The model as the actors load it: an absolute path, or a package name."""
    path = Path(model_path)
    if path.exists():
        if not path.is_dir() or not (path / "config.cfg").is_file():
            hint = "Give the folder written by `spacy train` (e.g. training/model-best) or by nlp.to_disk()."
            raise ValueError(Errors.E012.format(path=path, hint=hint))
        return str(path.resolve())
    import spacy

    if spacy.util.is_package(str(model_path)):
        return str(model_path)
    raise ValueError(Errors.E012.format(path=path, hint="The path does not exist."))


def _model_info(model: str, collected: _Collected) -> Dict[str, Any]:
    info: Dict[str, Any] = {"path": model, "labels": collected.labels, "thresholds": collected.thresholds}
    meta_path = Path(model) / "meta.json"
    if meta_path.is_file():
        meta = srsly.read_json(meta_path)
        info.update({key: meta.get(key) for key in ("lang", "name", "version")})
    return info


def _check_output_dir(out_dir: Path, sources: Sequence[Source]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(Errors.E094.format(path=out_dir, problem="is a file"))
    resolved = out_dir.resolve()
    for source in sources:
        if resolved == source.path.resolve() or resolved in source.path.resolve().parents:
            raise ValueError(Errors.E094.format(path=out_dir, problem=f"holds the input '{source.path}'"))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise ValueError(
            Errors.E094.format(
                path=out_dir, problem="holds files and is not the output of an earlier run (no manifest.json)"
            )
        )


def _replace_dir(tmp_dir: Path, out_dir: Path) -> None:
    """Move the finished output into place, replacing an earlier run's."""
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp_dir, out_dir)


def iter_output_lines(output_dir: Union[str, Path]) -> Iterator[str]:
    """The annotated records of a Ray run, in input order (shard by shard).

    output_dir (Union[str, Path]): The folder with manifest.json.
    YIELDS (str): Each output line, without its newline.
    """
    output_dir = Path(output_dir)
    manifest = srsly.read_json(output_dir / MANIFEST)
    for shard in manifest["shards"]:
        with (output_dir / shard["jsonl"]).open(encoding="utf8") as file_:
            for line in file_:
                yield line.rstrip("\n")


# ---------------------------------------------------------------- evaluate


class RayPredictor:
    """The actor that predicts gold texts for evaluation: each call gets
    blocks of texts and returns their probabilities (float32, label order).

    model_path (str): The pipeline, on a path every node sees.
    options (Dict[str, Any]): batch_size, num_cpus.
    """

    def __init__(self, model_path: str, options: Dict[str, Any]) -> None:
        _load_into_actor(self, model_path, options)
        self.batch_size = int(options["batch_size"])

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        probs: List[bytes] = []
        for texts in batch["texts"]:
            texts = [str(text) for text in texts]
            rows: List[List[float]] = []
            # blocks start at multiples of the batch size: the same windows as nlp.pipe
            for start in range(0, len(texts), self.batch_size):
                window = texts[start:start + self.batch_size]
                rows.extend(probabilities(doc, self.labels) for doc in self.nlp.pipe(window, batch_size=len(window)))
            probs.append(numpy.asarray(rows, dtype="f").tobytes())
        column = numpy.empty(len(probs), dtype=object)
        column[:] = probs
        info = numpy.empty(len(probs), dtype=object)
        info[:] = [json.dumps(self.info)] * len(probs)
        return {"first": numpy.asarray(batch["first"], dtype=numpy.int64), "probs": column, "actor": info}


def predict_arrays_ray(
    nlp: Any,
    model_path: Union[str, Path],
    data_path: Union[str, Path],
    *,
    settings: Optional[RaySettings] = None,
) -> PredictionArrays:
    """Predict gold documents on Ray and collect the arrays for scoring.

    The driver reads the gold documents (it needs their values for the
    scores) and sends the texts to the actors in blocks; the arrays equal
    those of :func:`spacy_mlbert.evaluation.predict_arrays`.

    nlp (Language): The pipeline, loaded here (vocab, labels).
    model_path (Union[str, Path]): The same pipeline, for the actors.
    data_path (Union[str, Path]): A .spacy file or a folder of them.
    settings (Optional[RaySettings]): Cluster, pool and batch settings.
    RETURNS (PredictionArrays): Gold values, probabilities, known-mask,
        languages and ids, in gold document order.
    """
    settings = settings or RaySettings()
    settings.check()
    import_ray()  # before the gold data is read: say at once that Ray is missing
    name, textcat = find_textcat(nlp)
    labels = list(textcat.labels)
    model = _model_ref(model_path)
    check_files(data_path, name, labels)
    collector = GoldCollector(labels)
    blocks: List[Dict[str, Any]] = []
    texts: List[str] = []
    for gold in read_gold_docs(nlp, data_path):
        texts.append(collector.add(gold))
        if len(texts) == settings.block_size:
            blocks.append({"first": len(collector) - len(texts), "texts": texts})
            texts = []
    if texts:
        blocks.append({"first": len(collector) - len(texts), "texts": texts})
    y_prob = numpy.zeros((len(collector), len(labels)), dtype="f")
    if blocks:
        filled = numpy.zeros(len(collector), dtype=bool)
        options = {"batch_size": settings.batch_size, "num_cpus": settings.num_cpus}
        with ray_session(settings.address) as ray, _quiet_data_context(ray):
            concurrency = _pool_size(ray, settings, len(blocks))
            with _no_remote_args_warning():
                dataset = ray.data.from_items(blocks, override_num_blocks=len(blocks)).map_batches(
                    RayPredictor, fn_constructor_args=(model, options), **_map_batches_args(ray, settings, concurrency)
                )
            bar = tqdm(
                total=len(collector), unit="doc", desc="Predicting on Ray", disable=not settings.progress, leave=False
            )
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    for first, raw in zip(batch["first"], batch["probs"]):
                        rows = numpy.frombuffer(raw, dtype="f").reshape((-1, len(labels)))
                        first = int(first)
                        # a retried block comes back the same; count it once
                        if not filled[first:first + len(rows)].all():
                            bar.update(len(rows))
                        y_prob[first:first + len(rows)] = rows
                        filled[first:first + len(rows)] = True
            except _ray_error_types(ray) as err:
                raise ValueError(Errors.E098.format(detail=_short(err))) from err
            finally:
                bar.close()
        if not filled.all():
            missing = int((~filled).sum())
            problem = f"{missing} document(s) came back without probabilities"
            raise ValueError(Errors.E097.format(path=data_path, problem=problem))
    return collector.arrays(y_prob, str(data_path), name, checked=True)
