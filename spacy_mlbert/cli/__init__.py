"""Command line: ``spacy-mlbert COMMAND`` or ``python -m spacy_mlbert COMMAND``.

Each command lives in its own module and registers itself on ``app``.
"""
from ._app import app

# Importing a command module registers its command.
# (keep this list sorted; one line per module)
from . import annotate  # noqa: F401
from . import build_encoder  # noqa: F401
from . import compare  # noqa: F401
from . import convert  # noqa: F401
from . import evaluate  # noqa: F401
from . import model_card  # noqa: F401
from . import quantize  # noqa: F401
from . import train_staged  # noqa: F401
from . import tune_thresholds  # noqa: F401


def main() -> None:
    app()
