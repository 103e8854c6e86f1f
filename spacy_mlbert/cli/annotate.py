"""``spacy-mlbert annotate MODEL IN.jsonl OUT.jsonl``: add predictions to JSONL records.

With ``--engine ray`` the work is spread over a pool of Ray actors and OUT is
a folder of JSONL shards (names in input order) with a manifest.json.
"""
from pathlib import Path
from typing import Any, Dict, Optional

import typer
from wasabi import msg

from ..errors import coded_message
from . import _engine
from ._app import app, require_extra

# How many skipped lines to list by number.
SHOW_SKIPPED = 10


@app.command("annotate")
def annotate_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Pipeline folder with an mlbert_textcat component"),
    input_path: Path = typer.Argument(..., metavar="IN.jsonl", help="JSONL file, one object with a \"text\" per line"),
    output_path: Path = typer.Argument(
        ..., metavar="OUT.jsonl", help="JSONL file to write (--engine ray: a folder for shards and manifest.json)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Lines per nlp.pipe batch"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip and count invalid lines instead of stopping"),
    cats_key: str = typer.Option("cats", "--cats-key", help="Output field for the probabilities"),
    labels_key: str = typer.Option("labels", "--labels-key", help="Output field for the predicted labels"),
    engine: str = _engine.ENGINE,
    n_process: Optional[int] = _engine.N_PROCESS,
    address: Optional[str] = _engine.ADDRESS,
    actors: Optional[int] = _engine.ACTORS,
    num_cpus: Optional[float] = _engine.NUM_CPUS,
    num_gpus: Optional[float] = _engine.NUM_GPUS,
    block_batches: Optional[int] = _engine.BLOCK_BATCHES,
    max_restarts: Optional[int] = _engine.MAX_RESTARTS,
    max_task_retries: Optional[int] = _engine.MAX_TASK_RETRIES,
    parquet: bool = typer.Option(False, "--parquet", help="Ray: Write a Parquet file next to each JSONL shard"),
) -> None:
    """Add predicted labels and probabilities to the records of a JSONL file.

    Every record of IN.jsonl is written to OUT.jsonl with all its fields plus
    "cats" ({label: probability}) and "labels" (the labels at or above their
    thresholds). An invalid line stops the run (nothing is written) unless
    --skip-invalid is given; blank lines are skipped and counted.

    --engine ray runs the pipeline on a pool of Ray actors (a local Ray
    started on the fly, or --address auto|HOST:PORT|ray://HOST:PORT) and
    writes OUT as a folder: JSONL shards whose names sort in input order
    (`cat OUT/part-*.jsonl` gives the local engine's file), failures.jsonl and
    manifest.json. IN may also be Parquet, or a folder of JSONL/Parquet files.
    """
    require_extra("project", "tqdm", purpose="annotate a corpus")
    # imported here so that `--help` of other commands stays fast
    from ..annotate.jsonl import annotate
    from ..annotate.engines.ray_engine import RayNotInstalled

    options = _engine.EngineOptions(
        engine, n_process, address, actors, num_cpus, num_gpus, block_batches, max_restarts, max_task_retries, parquet
    )
    try:
        options.check()
        if options.engine == _engine.RAY:
            from ..annotate.engines.ray_engine import annotate_ray

            manifest = annotate_ray(
                model,
                input_path,
                output_path,
                settings=options.ray_settings(batch_size),
                skip_invalid=skip_invalid,
                cats_key=cats_key,
                labels_key=labels_key,
                parquet=parquet,
            )
            _report_ray(manifest, output_path)
            return
        counts = annotate(
            model,
            input_path,
            output_path,
            batch_size=batch_size,
            skip_invalid=skip_invalid,
            cats_key=cats_key,
            labels_key=labels_key,
            n_process=1 if options.n_process is None else options.n_process,
        )
    except (OSError, ValueError, RayNotInstalled) as err:
        # coded messages say what to do; a traceback would only hide them
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    msg.good(
        f"Annotated {counts['written']} of {counts['read']} line(s): {output_path}",
    )
    if counts["skipped"]:
        shown = ", ".join(str(n) for n in counts["skipped_lines"][:SHOW_SKIPPED])
        more = " ..." if counts["skipped"] > SHOW_SKIPPED else ""
        msg.warn(f"Skipped {counts['skipped']} line(s) ({counts['blank']} blank): lines {shown}{more}")
        for reason in list(counts["reasons"].values())[:SHOW_SKIPPED]:
            msg.text(reason)


def _report_ray(manifest: Dict[str, Any], output_path: Path) -> None:
    counts = manifest["counts"]
    n_shards = len(manifest["shards"])
    msg.good(
        f"Annotated {counts['written']} of {counts['read']} line(s) on Ray into {n_shards} shard(s): {output_path}",
        f"{manifest['docs_per_second']} docs/s with {manifest['ray']['actors']} actor(s); see manifest.json",
    )
    failures = manifest["failures"]
    if failures["count"]:
        msg.warn(
            f"Skipped {counts['skipped']} line(s) ({counts['blank']} blank) and failed {counts['failed']}: "
            f"every one is listed in {output_path / failures['file']}"
        )
        for failure in failures["first"][:SHOW_SKIPPED]:
            msg.text(f"line {failure['line']} (id {failure['id']!r}, {failure['kind']}): {failure['reason']}")
