"""The typer application that every command module registers itself on."""
import typer

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
