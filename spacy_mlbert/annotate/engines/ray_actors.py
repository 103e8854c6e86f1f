"""The Ray actors: each loads the pipeline once; RayAnnotator annotates
blocks of input lines and writes their shards, RayPredictor predicts blocks
of gold texts for evaluation."""
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy

from ...evaluation.evaluate import find_textcat, load_pipeline
from ...metrics import cats_row
from ...atomic import write_atomic
from ..util import (
    LineRecord,
    Prediction,
    check_output_keys,
    format_prediction,
    parse_line,
    predict_text,
    predict_window,
    window_texts,
    windows,
)
from .ray_input import read_block, runs
from .ray_output import shard_name, write_jsonl, write_parquet

logger = logging.getLogger("spacy_mlbert")


def _limit_threads(num_cpus: float) -> None:
    """One torch thread per CPU the actor holds: actors sharing a machine
    would otherwise each start a thread per core and slow each other down."""
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))


def _actor_info(started: float, load_s: float) -> Dict[str, Any]:
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    return {"pid": os.getpid(), "host": socket.gethostname(), "node": node, "started": started, "load_s": load_s}


def _record_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None


def load_into_actor(actor: Any, model_path: str, options: Dict[str, Any]):
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
        textcat = load_into_actor(self, model_path, options)
        self.thresholds = {label: float(value) for label, value in textcat.thresholds.items()}
        self.options = options
        self.sources = [Path(path) for path in options["sources"]]
        self.out_dir = Path(options["out_dir"])

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        summaries = [json.dumps(self.annotate_run(*run)) for run in runs(read_block(batch))]
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
        valid: List[LineRecord] = []
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
        for window in windows(valid, opts["batch_size"]):
            for (number, record, _), prediction in zip(window, self._predict(window, summary)):
                if prediction is not None:
                    line_text = format_prediction(record, prediction, opts["cats_key"], opts["labels_key"])
                    results.append((number, record, line_text))
        summary["written"] = len(results)
        if results:
            name = shard_name(source, lines[0])
            summary["jsonl"] = f"{name}.jsonl"
            write_atomic(self.out_dir / summary["jsonl"], lambda tmp: write_jsonl(tmp, results))
            if opts["parquet"]:
                summary["parquet"] = f"{name}.parquet"
                write_atomic(
                    self.out_dir / summary["parquet"],
                    lambda tmp: write_parquet(tmp, source, results, self.labels, opts),
                )
        summary["seconds"] = time.time() - began
        return summary

    def _predict(self, window: List[LineRecord], summary: Dict[str, Any]) -> List[Optional[Prediction]]:
        """The window's predictions (each window in its own memory zone, so an
        actor's memory stays flat); None for a record the pipeline fails on."""
        try:
            return list(predict_window(self.nlp, window_texts(window), self.labels))
        # one bad text must not stop a corpus run: find it below and report it
        except Exception:  # noqa: BLE001
            logger.warning("A batch failed at line %d; retrying its records one by one.", window[0][0])
        predictions: List[Optional[Prediction]] = []
        for number, record, text in window:
            try:
                predictions.extend(predict_window(self.nlp, [text], self.labels))
            except Exception as err:  # noqa: BLE001 (reported with the record)
                predictions.append(None)
                summary["failed"] += 1
                reason = f"{type(err).__name__}: {err}"
                summary["failures"].append({"line": number, "id": _record_id(record), "kind": "failed", "reason": reason})
        return predictions


class RayPredictor:
    """The actor that predicts gold texts for evaluation: each call gets
    blocks of texts and returns their probabilities (float32, label order).

    model_path (str): The pipeline, on a path every node sees.
    options (Dict[str, Any]): batch_size, num_cpus.
    """

    def __init__(self, model_path: str, options: Dict[str, Any]) -> None:
        load_into_actor(self, model_path, options)
        self.batch_size = int(options["batch_size"])

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        probs: List[bytes] = []
        for texts in batch["texts"]:
            texts = [str(text) for text in texts]
            rows: List[numpy.ndarray] = []
            # blocks start at multiples of the batch size: the same windows as nlp.pipe
            for start in range(0, len(texts), self.batch_size):
                window = texts[start:start + self.batch_size]
                rows.extend(cats_row(cats, self.labels) for cats, _ in predict_window(self.nlp, window, self.labels))
            probs.append(numpy.asarray(rows, dtype="f").tobytes())
        column = numpy.empty(len(probs), dtype=object)
        column[:] = probs
        info = numpy.empty(len(probs), dtype=object)
        info[:] = [json.dumps(self.info)] * len(probs)
        return {"first": numpy.asarray(batch["first"], dtype=numpy.int64), "probs": column, "actor": info}
