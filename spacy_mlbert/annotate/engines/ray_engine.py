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

The modules: :mod:`.ray_cluster` (Ray, the session, the settings),
:mod:`.ray_input` (sources and blocks), :mod:`.ray_actors` (the actors),
:mod:`.ray_output` (shards, collected summaries, manifest); this one runs them.
"""
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Type, Union

import numpy
from tqdm import tqdm

from ...atomic import atomic_path
from ...errors import Errors
from ...evaluation.evaluate import GoldCollector, PredictionArrays, check_files, find_textcat, read_gold_docs
from .ray_actors import RayAnnotator, RayPredictor
from .ray_cluster import (  # noqa: F401  (public names of the engine)
    DEFAULT_BLOCK_BATCHES,
    DEFAULT_MAX_RESTARTS,
    DEFAULT_MAX_TASK_RETRIES,
    RayNotInstalled,
    RaySettings,
    import_ray,
    loopback_only,
    map_batches_args,
    no_remote_args_warning,
    pool_size,
    quiet_data_context,
    ray_error_types,
    ray_session,
    short_error,
)
from .ray_input import INPUT_SUFFIXES, JSONL, PARQUET, Source, find_sources, plan_blocks, read_block  # noqa: F401
from .ray_output import (  # noqa: F401
    FAILURES,
    MANIFEST,
    MANIFEST_FORMAT,
    Collected,
    check_complete,
    check_output_dir,
    finish_output,
    iter_output_lines,
    shard_name,
)

logger = logging.getLogger("spacy_mlbert")


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
    check_output_dir(out_dir, sources)
    import_ray()  # before the input is scanned: say at once that Ray is missing
    blocks = plan_blocks(sources, settings.block_size)
    # the whole folder is written under a temporary name, synced and renamed
    # into place (replacing an earlier run's) only once it is complete
    with atomic_path(out_dir) as tmp_dir:
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
        collected = Collected()
        ray_info: Dict[str, Any] = {"version": None, "nodes": 0, "actors": 0}  # an empty input needs no Ray
        if blocks:
            with ray_session(settings.address) as ray:
                concurrency = pool_size(ray, settings, len(blocks))
                ray_info = {"version": ray.__version__, "nodes": len(ray.nodes()), "actors": concurrency}
                with quiet_data_context(ray):
                    dataset = ray.data.from_items(blocks, override_num_blocks=len(blocks))
                    with no_remote_args_warning():
                        dataset = dataset.map_batches(
                            annotator_cls or RayAnnotator,
                            fn_constructor_args=(model, options),
                            **map_batches_args(ray, settings, concurrency),
                        )
                    total = sum(source.lines for source in sources)
                    _collect(ray, dataset, collected, total, settings.progress, began)
        if collected.fatal is not None:
            raise ValueError(collected.fatal[2])
        check_complete(collected, sources, input_path)
        manifest = finish_output(
            tmp_dir, collected, sources, model, settings, ray_info, began,
            skip_invalid=skip_invalid, cats_key=cats_key, labels_key=labels_key, parquet=parquet,
        )
    counts = manifest["counts"]
    if counts["skipped"] or counts["failed"]:
        logger.info(
            "Skipped %d and failed %d of %d line(s) (%d blank); see '%s'.",
            counts["skipped"], counts["failed"], counts["read"], counts["blank"], out_dir / FAILURES,
        )
    return manifest


def _collect(ray: Any, dataset: Any, collected: Collected, total: int, progress: bool, began: float) -> None:
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
        except ray_error_types(ray) as err:
            raise ValueError(Errors.E098.format(detail=short_error(err))) from err


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


# ---------------------------------------------------------------- evaluate


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
        with ray_session(settings.address) as ray, quiet_data_context(ray):
            concurrency = pool_size(ray, settings, len(blocks))
            with no_remote_args_warning():
                dataset = ray.data.from_items(blocks, override_num_blocks=len(blocks)).map_batches(
                    RayPredictor, fn_constructor_args=(model, options), **map_batches_args(ray, settings, concurrency)
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
            except ray_error_types(ray) as err:
                raise ValueError(Errors.E098.format(detail=short_error(err))) from err
            finally:
                bar.close()
        if not filled.all():
            missing = int((~filled).sum())
            problem = f"{missing} document(s) came back without probabilities"
            raise ValueError(Errors.E097.format(path=data_path, problem=problem))
    return collector.prediction_arrays(str(data_path), name, y_prob=y_prob, checked=True)
