"""spacy-transformers' TransformerModel, with a clear error for a bad encoder name.

The encoder is only loaded at ``initialize`` (a saved pipeline carries its own
weights), so the check runs there, not when the config is built: loading a
trained pipeline must keep working after the source folder is gone.
"""
from functools import partial
from pathlib import Path
from typing import Callable

from spacy_transformers.layers import TransformerModel

from ..errors import Errors


def CheckedTransformerModel(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict,
    transformer_config: dict,
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
) -> TransformerModel:
    """A TransformerModel whose initialization names a missing encoder clearly."""
    model = TransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
    )
    model.init = partial(_init_with_clear_errors, model.init)
    return model


def _init_with_clear_errors(original_init: Callable, model, X=None, Y=None) -> None:
    name = model.attrs["name"]
    try:
        original_init(model, X=X, Y=Y)
    except (OSError, ValueError) as err:
        # Hugging Face's message for a missing local folder talks about repo
        # ids; say what the user can do instead.
        if Path(name).expanduser().exists():
            raise
        raise ValueError(f"{Errors.E010.format(path=name)} (Hugging Face said: {err})") from err
