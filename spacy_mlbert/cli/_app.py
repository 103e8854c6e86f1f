"""The typer application that every command module registers itself on."""
import typer
from wasabi import msg

from .. import errors

app = typer.Typer(
    name="spacy-mlbert",
    help="Multilingual multi-label text classification for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main_callback() -> None:
    """Multilingual multi-label text classification for spaCy."""
    # An explicit callback keeps typer in subcommand mode even when a caller
    # registers a single command (typer would otherwise run it as the program).


def require_extra(extra: str, *modules: str, purpose: str) -> None:
    """Exit with a coded message (E140) naming the extra to install unless
    every module can be imported: a light install gets no traceback."""
    try:
        errors.require_extra(extra, *modules, purpose=purpose)
    except errors.MissingExtra as err:
        msg.fail(str(err))
        raise typer.Exit(code=1) from None
