"""``spacy-mlbert quantize MODEL OUT [--dev DEV]``: an int8 pipeline for CPU inference."""
from pathlib import Path
from typing import Any, Dict, Optional, Union

import typer
from wasabi import msg

from ..errors import coded_message
from ._app import app


@app.command("quantize")
def quantize_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Trained fp32 pipeline folder with an mlbert_textcat component"),
    output: Path = typer.Argument(..., metavar="OUT", help="Folder for the quantized pipeline"),
    dev: Optional[Path] = typer.Option(
        None, "--dev", "-d",
        help="Gold dev data (.spacy file or folder): refit the calibration and tune the thresholds "
        "on the quantized model's probabilities; without it, MODEL's are kept",
    ),
    quantize: str = typer.Option(
        "int8", "--quantize", "-q",
        help="int8: the encoder's linear layers; int8-embeddings: also the word embeddings (8-bit weights)",
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Texts per batch (with --dev)"),
    method: str = typer.Option("bagged", "--method", "-m", help="Threshold tuning method (with --dev), as for tune-thresholds"),
    calibrate: bool = typer.Option(
        True, "--calibrate/--no-calibrate", help="With --dev: refit the calibration first, as tune-thresholds does"
    ),
) -> None:
    """Write a copy of a trained pipeline whose encoder runs in int8 on CPU.

    The encoder's linear layers are quantized (PyTorch dynamic int8) and
    saved in int8 under a config that says quantize = "int8", so the
    output loads quantized with plain spacy.load, and `spacy package`, evaluate, annotate
    and tune-thresholds take it as they take MODEL. It cannot be trained or
    run on a GPU: keep MODEL for that. Quantization moves the probabilities
    a little: --dev refits the calibration and the per-label thresholds on
    the quantized model (tune-thresholds' code), on texts that must not be
    the ones it is then scored on.
    """
    from .tune_thresholds import print_comparison

    try:
        msg.info(f"Quantizing {model} ({quantize})" + (f", refitting on {dev}" if dev is not None else ""))
        result = quantize_model(
            model, output, how=quantize, dev_path=dev, batch_size=batch_size, method=method, calibrate=calibrate
        )
    except (OSError, ValueError) as err:
        # coded messages say what to do; a traceback would only hide them
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    if result["tuning"] is not None:
        print_comparison(result["tuning"])
    else:
        msg.info(
            f"Kept the calibration and per-label thresholds of {model}, fitted on the fp32 model; "
            "give --dev DEV to refit them on the quantized one"
        )
    msg.good(f"Saved the quantized pipeline to {output}", f"components: {', '.join(result['components'])}")


def quantize_model(
    model_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    how: str = "int8",
    dev_path: Optional[Union[str, Path]] = None,
    batch_size: int = 64,
    method: str = "bagged",
    calibrate: bool = True,
) -> Dict[str, Any]:
    """Load an fp32 pipeline, quantize its transformers, refit its
    calibration and thresholds on ``dev_path`` if given, and save it
    (atomically). The weights are saved in int8, in the lean layout
    (layers/lean_weights.py): loading never holds the fp32 weights.

    model_path (Union[str, Path]): The trained fp32 pipeline (folder or package).
    output_path (Union[str, Path]): Folder for the quantized pipeline.
    how (str): "int8" or "int8-embeddings".
    dev_path (Optional[Union[str, Path]]): Gold data to refit on; None keeps
        the pipeline's calibration and thresholds.
    batch_size, method, calibrate: as for tune-thresholds (with dev_path).
    RETURNS (Dict[str, Any]): components (those whose config now says
        quantize), output, and tuning (tune_loaded_pipeline's result, or None).
    """
    from ..atomic import write_atomic
    from ..errors import Errors
    from ..evaluation.evaluate import load_pipeline
    from ..quantization import NONE, QUANTIZE_OPTIONS, check_quantize, quantize_pipeline
    from ..tuning.thresholds import _check_method, _check_output, tune_loaded_pipeline

    if check_quantize(how) == NONE:  # nothing to do: MODEL is the fp32 pipeline
        options = ", ".join(option for option in QUANTIZE_OPTIONS if option != NONE)
        raise ValueError(Errors.E200.format(value=how, options=options))
    if dev_path is not None:
        _check_method(method)  # before the slow part
    output_path = Path(output_path)
    _check_output(Path(model_path), output_path)
    nlp = load_pipeline(model_path)
    components = quantize_pipeline(nlp, how, path=model_path)
    tuning = None
    if dev_path is not None:
        # refit on the quantized model's own probabilities: saved in int8,
        # it loads as it is now and predicts the same
        tuning = tune_loaded_pipeline(nlp, dev_path, batch_size=batch_size, method=method, calibrate=calibrate)
    write_atomic(output_path, nlp.to_disk)
    return {"components": components, "output": str(output_path), "tuning": tuning}
