"""Outputs that are either complete or absent.

Every file or folder the commands write goes to a temporary name in the same
folder (so the rename cannot cross file systems), is flushed to disk with
``fsync``, and only then renamed to its final name, after which the folder
itself is synced so the rename survives a power cut. On any failure (a full
disk, an exception, Ctrl-C) the temporary is removed and nothing appears
under the final name; a file or folder already there stays as it was.
"""
import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union

PathLike = Union[str, Path]


def temporary_name(path: PathLike) -> Path:
    """A hidden, unique name beside ``path``."""
    path = Path(path)
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"


def fsync_tree(path: PathLike) -> None:
    """fsync a file, or every file and folder below a folder (and itself)."""
    path = Path(path)
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_path(Path(root) / name)
            _fsync_dir(Path(root))
    else:
        _fsync_path(path)


def _fsync_path(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # not every platform lets a folder be opened (Windows); there the rename
    # is as durable as the platform makes it
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write a file or a folder at; on success it
    is synced and renamed to ``path`` (replacing what was there), on failure
    removed. The folder ``path`` goes in is made if need be.

        with atomic_path(out / "train.spacy") as tmp:
            doc_bin.to_disk(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(final)
    try:
        yield tmp
        fsync_tree(tmp)
        replace_path(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(final.parent)


def replace_path(tmp: Path, final: Path) -> None:
    """os.replace, also for a folder over an existing folder (which POSIX
    rename refuses unless it is empty) and for a file over a folder or a
    folder over a file (``convert`` writes a folder of shards once an output
    outgrows one file): the old one is moved aside first and removed only once
    the new one is in place."""
    if (tmp.is_dir() or final.is_dir()) and final.exists() and not final.is_symlink():
        aside = temporary_name(final)
        os.replace(final, aside)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(aside, final)
            raise
        _remove(aside)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` that writes a temporary file, renamed into place
    once closed without error. Text mode defaults to UTF-8 and ``\\n``."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf8")
        kwargs.setdefault("newline", "\n")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


def write_atomic(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` (e.g. ``srsly.write_json``, ``nlp.to_disk``) and
    move the result to ``path`` atomically. RETURNS the final path."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_json_atomic(path: PathLike, data: Any) -> Path:
    """srsly.write_json, atomically."""
    import srsly

    return write_atomic(path, lambda tmp: srsly.write_json(tmp, data))
