"""Atomic outputs: complete under the final name, or nothing there."""
import os

import pytest
import srsly

from spacy_mlbert.atomic import atomic_open, atomic_path, write_atomic, write_json_atomic


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_open_writes_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.jsonl"
    with atomic_open(path) as out:
        out.write("a\n")
        assert not path.exists()  # nothing under the final name while writing
    assert path.read_text() == "a\n"
    assert _leftovers(tmp_path) == []


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    srsly.write_json(path, {"old": 1})
    with pytest.raises(OSError):
        with atomic_open(path) as out:
            out.write('{"new": ')
            raise OSError(28, "No space left on device")
    assert srsly.read_json(path) == {"old": 1}
    assert _leftovers(tmp_path) == []


def test_failure_leaves_nothing_where_nothing_was(tmp_path):
    path = tmp_path / "train.spacy"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_a_folder_replaces_a_folder(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")

    def write(tmp):
        tmp.mkdir()
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")

    write_atomic(final, write)
    assert sorted(os.listdir(final)) == ["sub"]
    assert (final / "sub" / "new.txt").read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_a_failed_folder_keeps_the_old_folder(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")

    def write(tmp):
        tmp.mkdir()
        (tmp / "part").write_text("x")
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        write_atomic(final, write)
    assert os.listdir(final) == ["old.txt"]
    assert _leftovers(tmp_path) == []


def test_write_json_atomic(tmp_path):
    path = write_json_atomic(tmp_path / "t.json", {"a": [1, None]})
    assert srsly.read_json(path) == {"a": [1, None]}


def test_the_folder_of_the_output_is_made(tmp_path):
    """Every writer gets its output's folder made (quantize into a new
    folder failed before: spaCy's to_disk makes only the last level)."""
    path = tmp_path / "new" / "deeper" / "pipeline"
    write_atomic(path, lambda tmp: (tmp.mkdir(), (tmp / "config.cfg").write_text("x")))
    assert (path / "config.cfg").read_text() == "x"
    assert _leftovers(path.parent) == []
