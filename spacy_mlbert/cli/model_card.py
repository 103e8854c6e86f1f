"""``spacy-mlbert model-card MODEL metrics.json --output meta.json`` for ``spacy package``."""
from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ..atomic import atomic_open, write_json_atomic
from ..errors import coded_message
from ._app import app


@app.command("model-card")
def model_card_cli(
    model: Path = typer.Argument(..., help="The trained (and tuned) pipeline"),
    metrics: Path = typer.Argument(..., help="metrics.json from `evaluate` of this pipeline"),
    output: Path = typer.Option(..., "--output", "-o", help="meta.json to write (for spacy package --meta-path)"),
    name: Optional[str] = typer.Option(None, "--name", help="Package name, without the language prefix"),
    version: Optional[str] = typer.Option(None, "--version", help="Package version"),
    evaluated_on: str = typer.Option("the held-out test split", "--evaluated-on", help="What the metrics were computed on"),
    benchmark: Optional[Path] = typer.Option(
        None, "--benchmark",
        help="A Markdown benchmark table (e.g. benchmarks/quality_table.md), quoted only if its first line "
        "names this model's config and encoder",
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="The training config the pipeline was trained from"),
    license: Optional[str] = typer.Option(None, "--license", help="The pipeline's license, e.g. MIT"),
    license_files: bool = typer.Option(
        True, "--license-files/--no-license-files",
        help="Write LICENSE and LICENSES_SOURCES (the encoder's license) into MODEL, for spacy package",
    ),
) -> None:
    """Write meta.json whose model card describes this pipeline: its evaluation
    tables and encoder provenance, and a benchmark only of the same config and encoder."""
    from ..packaging.model_card import build_meta, encoder_source
    from ..packaging.model_card import license_files as make_license_files

    try:
        meta = build_meta(
            model, srsly.read_json(metrics), name=name, version=version, evaluated_on=evaluated_on,
            benchmark=benchmark, config=config, license=license,
        )
        if license_files:
            for file_name, text in make_license_files(meta, encoder_source(model)).items():
                with atomic_open(model / file_name) as handle:
                    handle.write(text)
        write_json_atomic(output, meta)
    except (OSError, ValueError, KeyError) as err:
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    reason = meta["mlbert"]["benchmark"].get("reason")
    if reason:
        msg.warn(reason)
    msg.good(f"Saved the model card to {output}")
