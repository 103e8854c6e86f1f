"""The output of a Ray run: shards written whole or not at all, the
summaries the driver collects from the actors, the completeness check, and
failures.jsonl and manifest.json."""
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import srsly

from ...errors import Errors
from ..util import MAX_REASONS, count_lines, dumps
from .ray_cluster import RaySettings
from .ray_input import Source

logger = logging.getLogger("spacy_mlbert")


MANIFEST = "manifest.json"


FAILURES = "failures.jsonl"


MANIFEST_FORMAT = "spacy-mlbert.annotations.v1"


def shard_name(source: int, first_line: int) -> str:
    """The name (without suffix) of the shard that starts at ``first_line`` of
    input ``source``: names sort in input order."""
    return f"part-{source:05d}-{first_line:012d}"


def write_jsonl(path: Path, results: List[Tuple[int, Dict[str, Any], str]]) -> None:
    with path.open("x", encoding="utf8", newline="\n") as out:
        for _, _, line_text in results:
            out.write(line_text + "\n")


def write_parquet(
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


class Collected:
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


def check_complete(collected: Collected, sources: Sequence[Source], input_path: Union[str, Path]) -> None:
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


def finish_output(
    tmp_dir: Path,
    collected: Collected,
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
        if not path.is_file() or count_lines(path) != run["written"]:
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
            out.write(dumps(failure) + "\n")
    counts = {key: sum(run[key] for run in runs) for key in ("read", "written", "skipped", "blank", "failed")}
    seconds = time.time() - began
    manifest = {
        "format": MANIFEST_FORMAT,
        "engine": "ray",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model_info(model, collected),
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


def model_info(model: str, collected: Collected) -> Dict[str, Any]:
    info: Dict[str, Any] = {"path": model, "labels": collected.labels, "thresholds": collected.thresholds}
    meta_path = Path(model) / "meta.json"
    if meta_path.is_file():
        meta = srsly.read_json(meta_path)
        info.update({key: meta.get(key) for key in ("lang", "name", "version")})
    return info


def check_output_dir(out_dir: Path, sources: Sequence[Source]) -> None:
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
