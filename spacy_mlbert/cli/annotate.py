"""``spacy-mlbert annotate MODEL IN.jsonl OUT.jsonl``: add predictions to JSONL records."""
from pathlib import Path

import typer
from wasabi import msg

from ..errors import coded_message
from ._app import app

# How many skipped lines to list by number.
SHOW_SKIPPED = 10


@app.command("annotate")
def annotate_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Pipeline folder with an mlbert_textcat component"),
    input_path: Path = typer.Argument(..., metavar="IN.jsonl", help="JSONL file, one object with a \"text\" per line"),
    output_path: Path = typer.Argument(..., metavar="OUT.jsonl", help="JSONL file to write"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per batch"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip and count invalid lines instead of stopping"),
    cats_key: str = typer.Option("cats", "--cats-key", help="Output field for the probabilities"),
    labels_key: str = typer.Option("labels", "--labels-key", help="Output field for the predicted labels"),
) -> None:
    """Add predicted labels and probabilities to the records of a JSONL file.

    Every record of IN.jsonl is written to OUT.jsonl with all its fields plus
    "cats" ({label: probability}) and "labels" (the labels at or above their
    thresholds). An invalid line stops the run (nothing is written) unless
    --skip-invalid is given; blank lines are skipped and counted.
    """
    # imported here so that `--help` of other commands stays fast
    from ..annotate import annotate

    try:
        counts = annotate(
            model,
            input_path,
            output_path,
            batch_size=batch_size,
            skip_invalid=skip_invalid,
            cats_key=cats_key,
            labels_key=labels_key,
        )
    except (OSError, ValueError) as err:
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
