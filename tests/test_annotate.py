"""Annotating JSONL files: one output line per record, fields kept, no silent drops."""
import json
from pathlib import Path

import pytest
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from spacy_mlbert.annotate.jsonl import annotate_jsonl
from spacy_mlbert.cli import app
from spacy_mlbert.evaluation import find_textcat, load_pipeline
from util import TRAIN_DATA, save_tiny_pipeline

LABELS = ["positive", "negative", "useful", "slow"]


def records():
    rows = [
        {"id": f"r{i}", "lang": lang, "text": text, "source": {"site": "test", "n": i}}
        for i, ((text, _), lang) in enumerate(zip(TRAIN_DATA, ["en", "en", "es", "fr", "zh", "ar"]))
    ]
    rows.append({"id": 7, "text": "Great value 👍 would buy again!", "extra": None})
    return rows


def write_jsonl(path: Path, lines) -> Path:
    path.write_text(
        "".join((json.dumps(line, ensure_ascii=False) if not isinstance(line, str) else line) + "\n" for line in lines),
        encoding="utf8",
    )
    return path


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    """A tiny transformer + mlbert_textcat pipeline, trained a few steps and saved."""
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=6, thresholds={"positive": 0.3, "slow": 0.7})


@pytest.fixture(scope="module")
def nlp(model_dir):
    return load_pipeline(model_dir)


def test_annotate_keeps_every_record_and_field(nlp, workdir):
    source = write_jsonl(workdir / "in.jsonl", records())
    output = workdir / "out" / "annotated.jsonl"
    counts = annotate_jsonl(nlp, source, output, batch_size=3, progress=False)
    assert counts["read"] == counts["written"] == 7 and counts["skipped"] == 0
    annotated = read_jsonl(output)
    assert len(annotated) == 7
    _, textcat = find_textcat(nlp)
    thresholds = textcat.thresholds
    for original, result in zip(records(), annotated):
        assert {k: v for k, v in result.items() if k not in ("cats", "labels")} == original
        assert list(result["cats"]) == LABELS
        assert all(0.0 <= p <= 1.0 for p in result["cats"].values())
        assert result["labels"] == [l for l in LABELS if result["cats"][l] >= thresholds[l]]
        doc = nlp(original["text"])
        assert_allclose([result["cats"][l] for l in LABELS], [doc.cats[l] for l in LABELS], atol=1e-5)
    # non-ASCII is written as is, not escaped
    assert "这个产品很好" in output.read_text(encoding="utf8")


def test_invalid_line_stops_with_file_and_line(nlp, workdir):
    lines = records()[:2] + ['{"id": "bad", "text": 5}'] + records()[2:]
    source = write_jsonl(workdir / "bad.jsonl", lines)
    output = workdir / "bad-out.jsonl"
    with pytest.raises(ValueError, match=r"E024.*bad.jsonl, line 3"):
        annotate_jsonl(nlp, source, output, progress=False)
    # nothing written, no temporary file left
    assert not output.exists()
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".bad-out")] == []


def test_skip_invalid_counts_every_line(nlp, workdir):
    lines = [
        records()[0],
        "not json",
        "",
        "[1, 2]",
        {"id": "no-text"},
        {"id": "blank-text", "text": "   "},
        records()[1],
    ]
    source = workdir / "mixed.jsonl"
    write_jsonl(source, lines)
    with source.open("ab") as file_:
        file_.write(b'{"text": "\xff broken"}\n{"id": "cut", "te')  # invalid UTF-8, then a cut-off last line
    output = workdir / "mixed-out.jsonl"
    counts = annotate_jsonl(nlp, source, output, skip_invalid=True, progress=False)
    assert counts["read"] == 9
    assert counts["written"] == 2 and counts["skipped"] == 7 and counts["blank"] == 1
    assert counts["read"] == counts["written"] + counts["skipped"]
    assert counts["skipped_lines"] == [2, 3, 4, 5, 6, 8, 9]
    reasons = counts["reasons"]
    assert "E020" in reasons[2] and "E022" in reasons[4] and "E023" in reasons[5]
    assert "E025" in reasons[6] and "E032" in reasons[8] and "E021" in reasons[9]
    assert [r["id"] for r in read_jsonl(output)] == ["r0", "r1"]
    # a blank line alone is skipped and counted even without skip_invalid
    source = write_jsonl(workdir / "blank.jsonl", [records()[0], "  ", records()[1]])
    counts = annotate_jsonl(nlp, source, output, progress=False)
    assert (counts["written"], counts["skipped"], counts["blank"]) == (2, 1, 1)


def test_existing_prediction_fields_are_not_overwritten(nlp, workdir):
    gold = dict(records()[0], labels=["positive"])
    source = write_jsonl(workdir / "gold.jsonl", [gold])
    output = workdir / "gold-out.jsonl"
    with pytest.raises(ValueError, match=r"E061.*'labels'.*--labels-key"):
        annotate_jsonl(nlp, source, output, progress=False)
    annotate_jsonl(nlp, source, output, labels_key="pred_labels", progress=False)
    (result,) = read_jsonl(output)
    assert result["labels"] == ["positive"] and isinstance(result["pred_labels"], list)
    with pytest.raises(ValueError, match="E064"):
        annotate_jsonl(nlp, source, output, labels_key="cats", progress=False)


def test_path_and_option_errors(nlp, workdir):
    source = write_jsonl(workdir / "paths.jsonl", records()[:1])
    with pytest.raises(ValueError, match="E059"):
        annotate_jsonl(nlp, workdir / "missing.jsonl", workdir / "x.jsonl", progress=False)
    with pytest.raises(ValueError, match="E060"):
        annotate_jsonl(nlp, source, source, progress=False)
    with pytest.raises(ValueError, match="E059.*folder"):
        annotate_jsonl(nlp, source, workdir, progress=False)
    with pytest.raises(ValueError, match="E058"):
        annotate_jsonl(nlp, source, workdir / "x.jsonl", batch_size=0, progress=False)


def test_cli_annotate(model_dir, workdir):
    source = write_jsonl(workdir / "cli-in.jsonl", records())
    output = workdir / "cli-out.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["annotate", str(model_dir), str(source), str(output), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    annotated = read_jsonl(output)
    assert len(annotated) == len(source.read_text(encoding="utf8").splitlines())
    assert [r["id"] for r in annotated] == [r["id"] for r in records()]
    assert "Annotated 7 of 7" in result.output
    # an invalid line: coded message, exit 1, no traceback
    bad = write_jsonl(workdir / "cli-bad.jsonl", [records()[0], "{oops"])
    result = runner.invoke(app, ["annotate", str(model_dir), str(bad), str(workdir / "cli-bad-out.jsonl")])
    assert result.exit_code == 1 and "[E020]" in result.output and "cli-bad.jsonl, line 2" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["annotate", str(model_dir), str(bad), str(workdir / "cli-bad-out.jsonl"), "--skip-invalid"]
    )
    assert result.exit_code == 0, result.output
    assert "Skipped 1 line(s)" in result.output and "lines 2" in result.output


def strict_loads(line: str):
    """json.loads that refuses NaN and Infinity, as strict JSON parsers do."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize(
    "line,code,detail",
    [
        ('{"id": "d", "text": "Good.", "id": "e"}', "E037", "the record: 'id' is given twice"),
        ('{"text": "Good.", "meta": {"a": 1, "a": 2}}', "E037", "field 'meta': 'a' is given twice"),
        ('{"text": "Good.", "score": NaN}', "E180", "NaN is not a finite number"),
        ('{"text": "Good.", "score": [1, Infinity]}', "E180", "Infinity is not a finite number"),
        ('{"text": "Good.", "meta": {"x": -Infinity}}', "E180", "-Infinity is not a finite number"),
        ('{"text": "Good.", "score": 1e400}', "E180", "1e400 is not a finite number"),
    ],
)
def test_duplicate_keys_and_non_finite_numbers_are_refused(nlp, tmp_path, line, code, detail):
    """A line whose value would be lost (a key given twice: JSON keeps the
    last) or could not be written back as JSON (NaN, Infinity) stops the run
    with file and line, as the converter does; --skip-invalid counts it."""
    source = write_jsonl(tmp_path / "fidelity.jsonl", [records()[0], line, records()[1]])
    output = tmp_path / "fidelity-out.jsonl"
    with pytest.raises(ValueError, match=rf"\[{code}\] .*fidelity.jsonl, line 2") as err:
        annotate_jsonl(nlp, source, output, progress=False)
    assert detail in str(err.value)
    assert not output.exists()
    counts = annotate_jsonl(nlp, source, output, skip_invalid=True, progress=False)
    assert (counts["read"], counts["written"], counts["skipped"]) == (3, 2, 1)
    assert counts["skipped_lines"] == [2] and f"[{code}]" in counts["reasons"][2]
    assert [strict_loads(text)["id"] for text in output.read_text(encoding="utf8").splitlines()] == ["r0", "r1"]


def test_duplicate_key_message_is_the_converters(workdir):
    """annotate reads a line with the converter's parser: the same message."""
    from spacy_mlbert.annotate.util import parse_line
    from spacy_mlbert.data import DataError, iter_jsonl_records

    path = write_jsonl(workdir / "same.jsonl", ['{"text": "x", "cats": {"pos": 1, "pos": 0}}'])
    with pytest.raises(DataError) as err:
        list(iter_jsonl_records(path))
    assert parse_line(path, 1, path.read_bytes()).problem == str(err.value)


def test_output_is_strict_json(nlp, workdir):
    """Floats of every size, nested values and non-ASCII come back as strict
    JSON; a prediction that is not finite is a coded error, never NaN."""
    from spacy_mlbert.annotate.util import format_prediction

    rows = [
        {"text": "Tiny and huge.", "x": [5e-324, 1.7976931348623157e308, -0.0, 10**30], "y": {"z": 0.1}},
        {"text": "Ünïcödé ✓", "nested": [[{"deep": None}]], "flag": False},
    ]
    source = write_jsonl(workdir / "strict.jsonl", rows)
    output = workdir / "strict-out.jsonl"
    annotate_jsonl(nlp, source, output, progress=False)
    parsed = [strict_loads(text) for text in output.read_text(encoding="utf8").splitlines()]
    assert [{k: v for k, v in row.items() if k not in ("cats", "labels")} for row in parsed] == rows
    with pytest.raises(ValueError, match=r"E181.*'positive'.*nan"):
        format_prediction({"text": "x"}, ({"positive": float("nan")}, []), "cats", "labels")


def test_output_is_synced_before_the_rename(nlp, workdir, synced_inodes):
    """The output file is fsynced (then renamed) and so is its folder: a power
    cut cannot leave an empty file under the final name."""
    import os

    synced = synced_inodes
    source = write_jsonl(workdir / "sync.jsonl", records()[:2])
    output = workdir / "sync-out" / "annotated.jsonl"
    annotate_jsonl(nlp, source, output, progress=False)
    # the renamed file keeps its inode: the one that was synced
    assert output.stat().st_ino in synced
    assert output.parent.stat().st_ino in synced
    assert [p.name for p in output.parent.iterdir()] == ["annotated.jsonl"]
