"""``spacy-mlbert train-staged CONFIG TRAIN DEV OUTPUT --langs en,es``."""
from pathlib import Path

import typer
from wasabi import msg

from ..errors import coded_message
from ._app import app


@app.command("train-staged")
def train_staged_cli(
    config: Path = typer.Argument(..., help="Training config, as for spacy train"),
    train: Path = typer.Argument(..., help="Training .spacy file (doc._.mlbert_lang set)"),
    dev: Path = typer.Argument(..., help="Dev .spacy file"),
    output: Path = typer.Argument(..., help="Folder for one sub-folder per phase"),
    langs: str = typer.Option(..., "--langs", help="Languages of the per-language phases, in order: en,es,zh"),
    encoder: str = typer.Option(..., "--encoder", help="Starting encoder: Hugging Face name or folder"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    stage_epochs: int = typer.Option(2, "--stage-epochs", help="Epochs of each language phase"),
) -> None:
    """Fine-tune per language (each phase from the previous encoder), then jointly.

    Each language phase hands on the encoder of its model-last (after all its
    epochs); the joint phase's model-best is the pipeline to use. With the
    fixed-size batcher, every phase is scored at the end of each epoch and its
    learning-rate decay ends with the phase.
    """
    from ..training.staged import parse_langs, train_staged

    try:
        phases = train_staged(
            config,
            train,
            dev,
            output,
            langs=parse_langs(langs),
            encoder=encoder,
            gpu_id=gpu_id,
            stage_overrides={"training.max_epochs": stage_epochs},
        )
    except (OSError, ValueError) as err:
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    msg.good("Staged training done", "\n".join(f"{k}: {v}" for k, v in phases.items()))
    msg.info(f"The pipeline to use: {phases['joint']}")
