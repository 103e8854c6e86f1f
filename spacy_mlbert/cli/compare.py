"""``spacy-mlbert compare A.json B.json --names a,b --output cmp.md``."""
from pathlib import Path
from typing import List, Optional

import srsly
import typer
from wasabi import msg

from ..atomic import atomic_open
from ..errors import coded_message
from ._app import app


@app.command("compare")
def compare_cli(
    metrics: List[Path] = typer.Argument(..., metavar="METRICS...", help="metrics.json files from `evaluate`"),
    names: Optional[str] = typer.Option(None, "--names", help="Column names, comma-separated (default: file stems)"),
    output: Path = typer.Option(..., "--output", "-o", help="Markdown file to write"),
) -> None:
    """Compare evaluations side by side: overall, per language and per label."""
    from ..evaluation.compare import compare_markdown

    columns = [n.strip() for n in names.split(",")] if names else [p.stem for p in metrics]
    if len(columns) != len(metrics):
        msg.fail(f"--names gives {len(columns)} names for {len(metrics)} metrics files.")
        raise typer.Exit(code=1)
    try:
        text = compare_markdown([srsly.read_json(p) for p in metrics], columns)
        with atomic_open(output) as handle:
            handle.write(text)
    except (OSError, ValueError, KeyError) as err:
        msg.fail(coded_message(err))
        raise typer.Exit(code=1) from None
    print(text)
    msg.good(f"Saved the comparison to {output}")
