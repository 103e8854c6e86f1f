"""The typer application that every command module registers itself on."""
import typer

app = typer.Typer(
    name="spacy-mlbert",
    help="Multilingual multi-label text classification for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)
