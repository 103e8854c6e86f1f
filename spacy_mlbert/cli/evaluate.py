"""``spacy-mlbert evaluate MODEL DATA --output metrics.json``: scores overall and per language."""
from pathlib import Path
from typing import Any, Mapping, Optional

import srsly
import typer
from wasabi import msg

from ..atomic import atomic_path
from ..errors import coded_message
from . import _engine
from ._app import app, require_extra


@app.command("evaluate")
def evaluate_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Pipeline folder with an mlbert_textcat component"),
    data: Path = typer.Argument(..., metavar="DATA", help="Gold data: a .spacy file or a folder of them"),
    output: Path = typer.Option(..., "--output", "-o", help="JSON file for the metrics, e.g. metrics.json"),
    report_dir: Optional[Path] = typer.Option(
        None, "--report-dir", "-r", help="Folder for a Markdown report and PNG plots"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per batch"),
    engine: str = _engine.ENGINE,
    n_process: Optional[int] = _engine.N_PROCESS,
    address: Optional[str] = _engine.ADDRESS,
    actors: Optional[int] = _engine.ACTORS,
    num_cpus: Optional[float] = _engine.NUM_CPUS,
    num_gpus: Optional[float] = _engine.NUM_GPUS,
    block_batches: Optional[int] = _engine.BLOCK_BATCHES,
    max_restarts: Optional[int] = _engine.MAX_RESTARTS,
    max_task_retries: Optional[int] = _engine.MAX_TASK_RETRIES,
) -> None:
    """Evaluate a pipeline on gold data, overall and per language.

    Micro/macro P/R/F1 and macro ROC AUC at the pipeline's own per-label
    thresholds, overall, per label and per language (doc._.mlbert_lang), and
    the expected calibration error (ECE) of the probabilities, per label and
    macro (15 equal-width bins over the annotated cells). --report-dir adds a
    reliability diagram.
    --engine ray predicts on a pool of Ray actors (the scores are the same).
    """
    if report_dir is not None:
        require_extra("project", "matplotlib", "sklearn", purpose="write the report and its plots")
    # imported here so that `--help` of other commands stays fast
    from ..annotate.engines.ray_engine import RayNotInstalled
    from ..evaluation.evaluate import compute_metrics, find_textcat, load_pipeline

    options = _engine.EngineOptions(
        engine, n_process, address, actors, num_cpus, num_gpus, block_batches, max_restarts, max_task_retries
    )
    try:
        options.check()
        msg.info(f"Evaluating {model} on {data}")
        nlp = load_pipeline(model)
        _, textcat = find_textcat(nlp, model)
        if options.engine == _engine.RAY:
            from ..annotate.engines.ray_engine import predict_arrays_ray

            arrays = predict_arrays_ray(nlp, model, data, settings=options.ray_settings(batch_size))
        else:
            from ..annotate.engines.local import predict_arrays_local

            n = 1 if options.n_process is None else options.n_process
            arrays = predict_arrays_local(nlp, data, batch_size=batch_size, n_process=n)
        metrics = compute_metrics(arrays, textcat.thresholds)
        written = None
        # metrics.json appears only once the report is written too: a failed
        # report leaves no metrics that look like a finished evaluation
        with atomic_path(output) as tmp:
            srsly.write_json(tmp, metrics)
            if report_dir is not None:
                from ..evaluation.report import write_report

                written = write_report(metrics, arrays, report_dir)
    except (OSError, ValueError, RayNotInstalled) as err:
        # coded messages say what to do; a traceback would only hide them
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    print_metrics(metrics)
    msg.good(f"Saved metrics to {output}")
    if written:
        msg.good(f"Saved the report to {report_dir}", ", ".join(p.name for p in written.values()))


def print_metrics(metrics: Mapping[str, Any]) -> None:
    """Print the overall, per-label and per-language tables.

    metrics (Mapping[str, Any]): From evaluation.compute_metrics.
    """
    from ..evaluation.markdown import overall_table, per_label_table, per_language_table, undefined_note

    msg.divider(f"Overall ({metrics['n_docs']} documents)")
    for title, (header, rows) in (
        (None, overall_table(metrics["overall"])),
        ("Per label", per_label_table(metrics, with_ece=True)),
        ("Per language", per_language_table(metrics)),
    ):
        if title:
            msg.divider(title)
        msg.table(rows, header=header, divider=True, aligns=("l",) + ("r",) * (len(header) - 1))
    note = undefined_note(metrics)
    if note:
        msg.warn(note)
