"""``spacy-mlbert tune-thresholds MODEL DEV --output MODEL_OUT``: per-label thresholds for F1."""
from pathlib import Path
from typing import Any, Mapping

import typer
from wasabi import msg

from ..errors import coded_message
from ._app import app


@app.command("tune-thresholds")
def tune_thresholds_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Pipeline folder with an mlbert_textcat component"),
    dev: Path = typer.Argument(..., metavar="DEV", help="Gold dev data: a .spacy file or a folder of them"),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the tuned pipeline"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per batch"),
    method: str = typer.Option(
        "bagged", "--method", "-m",
        help="exact: each label's best cut on dev; bagged: median best cut over bootstrap resamples; "
        "smoothed: best cut of the resample-averaged F1 curve; global: one cut for all labels",
    ),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate",
        help="Fit a per-label calibration (Platt scaling) on the dev data first and tune the "
        "thresholds on the calibrated probabilities; --no-calibrate keeps the pipeline's own",
    ),
) -> None:
    """Tune per-label decision thresholds for F1 on dev data.

    Each label gets the threshold that maximises its F1 on the dev data
    (--method says how robustly); the pipeline is saved with them. Labels
    without a positive in the dev data keep their threshold. By default a
    per-label calibration is fitted on the same data first, so that doc.cats
    are calibrated probabilities and the thresholds apply to them; the
    summary shows the expected calibration error (ECE) before and after.
    """
    # imported here so that `--help` of other commands stays fast
    from ..tuning.thresholds import tune_pipeline

    try:
        what = "Calibrating and tuning" if calibrate else "Tuning"
        msg.info(f"{what} the thresholds of {model} on {dev} ({method})")
        result = tune_pipeline(model, dev, output, batch_size=batch_size, method=method, calibrate=calibrate)
    except (OSError, ValueError) as err:
        # coded messages say what to do; a traceback would only hide them
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    print_comparison(result)
    if result["untuned"]:
        msg.warn(
            f"{len(result['untuned'])} label(s) have no positive in the dev data and "
            f"keep their threshold: {', '.join(result['untuned'])}"
        )
    msg.good(f"Saved the tuned pipeline to {output}")


def print_comparison(result: Mapping[str, Any]) -> None:
    """Print thresholds and F1 per label before and after tuning, and the averages.

    result (Mapping[str, Any]): From thresholds.tune_pipeline.
    """
    from ..evaluation.markdown import format_number

    before, after = result["before"], result["after"]
    msg.divider(f"Thresholds tuned on {result['n_docs']} documents")
    rows = [
        [
            label,
            format_number(before["thresholds"][label]),
            format_number(after["thresholds"][label]),
            format_number(before["per_label_f"].get(label)),
            format_number(after["per_label_f"].get(label)),
        ]
        for label in result["labels"]
    ]
    for key, name in (("macro_f", "macro F"), ("micro_f", "micro F")):
        rows.append([name, "", "", format_number(before[key]), format_number(after[key])])
    header = ["label", "threshold before", "after", "F before", "F after"]
    msg.table(rows, header=header, divider=True, aligns=("l", "r", "r", "r", "r"))
    print_calibration(result)


def print_calibration(result: Mapping[str, Any]) -> None:
    """Print each label's calibration [a, b] and its ECE before and after, and the macro ECE.

    result (Mapping[str, Any]): From thresholds.tune_pipeline.
    """
    from ..evaluation.markdown import format_number as _fmt

    before, after = result["before"], result["after"]
    calibration = result.get("calibration")
    parameters = calibration["parameters"] if calibration else {}
    title = "Calibration (ECE: 15 equal-width bins over the annotated cells)"
    msg.divider(title if calibration else title + ": not fitted (--no-calibrate)")
    rows = [
        [
            label,
            _fmt(parameters.get(label, [None, None])[0]),
            _fmt(parameters.get(label, [None, None])[1]),
            _fmt(before["per_label_ece"].get(label)),
            _fmt(after["per_label_ece"].get(label)),
        ]
        for label in result["labels"]
    ]
    rows.append(["macro ECE", "", "", _fmt(before["ece"]), _fmt(after["ece"])])
    header = ["label", "a", "b", "ECE before", "ECE after"]
    msg.table(rows, header=header, divider=True, aligns=("l", "r", "r", "r", "r"))
    if calibration and calibration["identity"]:
        msg.warn(
            f"{len(calibration['identity'])} label(s) lack a positive or a negative in the dev "
            f"data and stay uncalibrated: {', '.join(calibration['identity'])}"
        )
