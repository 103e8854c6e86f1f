"""Streaming convert: the same split as the in-memory algorithm, shards that
every reader reads, and outputs that are complete or absent."""
import hashlib
import json
import random
from pathlib import Path
from typing import Dict, List

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Corpus
from typer.testing import CliRunner

from spacy_mlbert.cli import app
from spacy_mlbert.data import docbin_labels, read_docbin, read_records, remove_duplicate_texts
from spacy_mlbert.data.split import label_matrix
from spacy_mlbert.data.stratify import BitMatrix, iterative_stratification
from spacy_mlbert.extensions import install_extensions
from spacy_mlbert.readers import create_multilingual_corpus_reader
from spacy_mlbert.schedules import count_docbin_docs

LABELS = ["anger", "fear", "joy", "sadness", "surprise"]
WORDS = {
    "en": "the delay made me so angry happy today".split(),
    "ru": "Я очень зол на эту задержку сегодня".split(),
    "zh": list("我今天很生气因为延误"),
    "hi": "मुझे आज बहुत गुस्सा आया देरी से".split(),
}


def corpus_lines(n: int, seed: int = 0) -> List[dict]:
    """Short multilingual records with labels, unknowns and some duplicate texts."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        lang = rng.choice(sorted(WORDS))
        words = WORDS[lang]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 6)))
        line: dict = {"id": f"r{i}", "lang": lang, "text": f"{text} {i}"}
        if i % 17 == 5:
            line["text"] = lines[i - 3]["text"]  # a duplicate text
        if lang == "zh":  # no "fear" column: unknown
            line["cats"] = {label: int(rng.random() < 0.3) for label in LABELS if label != "fear"}
        else:
            line["labels"] = [label for label in LABELS if rng.random() < 0.25]
        lines.append(line)
    return lines


def write_jsonl(path: Path, lines: List[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def run(args):
    """Run convert; the result's output with its line breaks (wasabi wraps) as spaces."""
    result = CliRunner().invoke(app, ["convert", *[str(arg) for arg in args]])
    result.said = " ".join(result.output.split())
    return result


def texts_digest(texts: List[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def old_split(path: Path, ratios, seed: int) -> Dict[str, List[str]]:
    """The split as convert made it before streaming: read_records, then
    iterstrat's IterativeStratification on the dense matrix."""
    iterstrat = pytest.importorskip("iterstrat.ml_stratifiers")
    records, report = read_records(path)
    kept, _ = remove_duplicate_texts(records)
    matrix = label_matrix(kept, report.labels)
    rng = numpy.random.RandomState(seed)
    order = rng.permutation(len(kept))
    folds_in_order = iterstrat.IterativeStratification(labels=matrix[order], r=numpy.asarray(ratios), random_state=rng)
    folds = numpy.empty(len(kept), dtype=int)
    folds[order] = folds_in_order
    names = ["train", "dev", "test"][: len(ratios)]
    return {name: [r.text for r, f in zip(kept, folds) if names[f] == name] for name in names}


def leftovers(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


@pytest.mark.parametrize("trial", range(12))
def test_stratify_makes_the_same_folds_as_iterstrat(trial):
    iterstrat = pytest.importorskip("iterstrat.ml_stratifiers")
    rng = numpy.random.RandomState(trial)
    n_rows, n_cols = rng.randint(1, 300), rng.randint(1, 19)
    dense = rng.rand(n_rows, n_cols) < rng.rand() * 0.5
    if trial % 4 == 0:  # rows without any column too
        dense[:, 1:] = False
    ratios = [(0.8, 0.1, 0.1), (0.9, 0.1), (0.5, 0.3, 0.2)][trial % 3]
    expected = iterstrat.IterativeStratification(
        labels=dense, r=numpy.asarray(ratios), random_state=numpy.random.RandomState(trial)
    )
    folds = iterative_stratification(BitMatrix.from_dense(dense), ratios, numpy.random.RandomState(trial))
    assert folds.tolist() == expected.tolist()


@pytest.mark.parametrize("ratios,seed", [("0.8,0.1,0.1", 0), ("0.7,0.3", 3)])
def test_convert_split_is_the_same_as_before(tmp_path, ratios, seed):
    path = write_jsonl(tmp_path / "data.jsonl", corpus_lines(1200, seed=seed))
    expected = old_split(path, [float(r) for r in ratios.split(",")], seed)
    result = run([path, tmp_path / "out", "--split", ratios, "--seed", seed, "--shard-size", 300, "--quiet"])
    assert result.exit_code == 0, result.output
    for name, texts in expected.items():
        docs = read_docbin(tmp_path / "out" / f"{name}.spacy")
        assert texts_digest([doc.text for doc in docs]) == texts_digest(texts), name
        assert (tmp_path / "out" / f"{name}.spacy").is_dir() == (len(texts) > 300)
    assert (tmp_path / "out" / "train.spacy").is_dir()  # and the others files or folders by their size
    report = srsly.read_json(tmp_path / "out" / "convert-report.json")
    assert report["counts_add_up"] and report["duplicates_removed"] == len(report["duplicates"]) > 0


def test_shard_folder_is_read_by_every_reader(tmp_path):
    install_extensions()
    lines = corpus_lines(250)
    path = write_jsonl(tmp_path / "data.jsonl", lines)
    result = run([path, tmp_path / "out", "--shard-size", 100, "--quiet"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "train.spacy"
    assert sorted(p.name for p in folder.iterdir()) == ["0000.spacy", "0001.spacy", "0002.spacy"]
    expected_texts = [line["text"] for line in lines]
    nlp = spacy.blank("xx")
    assert [doc.text for doc in read_docbin(folder)] == expected_texts
    assert [eg.reference.text for eg in Corpus(folder)(nlp)] == expected_texts
    reader = create_multilingual_corpus_reader(folder, langs=["zh"])
    assert [eg.reference.text for eg in reader(nlp)] == [line["text"] for line in lines if line["lang"] == "zh"]
    assert count_docbin_docs(folder) == 250
    assert set(docbin_labels(folder)) == set(LABELS)
    # a second conversion that fits one shard turns the folder back into a file
    result = run([path, tmp_path / "out", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "train.spacy").is_file() and len(DocBin().from_disk(folder)) == 250
    assert leftovers(tmp_path / "out") == []


def test_write_error_leaves_no_output_and_keeps_the_old_ones(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "data.jsonl", corpus_lines(400))
    before = path.read_bytes()
    out = tmp_path / "out"
    result = run([path, out, "--split", "0.8,0.1,0.1", "--quiet"])
    assert result.exit_code == 0, result.output
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def full_disk(self, target):
        calls.append(target)
        if len(calls) == 2:  # the second shard: the disk is full
            Path(target).write_bytes(b"partial")
            raise OSError(28, "No space left on device", str(target))
        return original(self, target)

    original = DocBin.to_disk
    monkeypatch.setattr(DocBin, "to_disk", full_disk)
    result = run([path, out, "--split", "0.8,0.1,0.1", "--shard-size", 100, "--seed", 1, "--quiet"])
    assert result.exit_code == 1 and "No space left" in result.said and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # nothing new, nothing half-written
    assert leftovers(tmp_path) == [] and path.read_bytes() == before


def test_bad_line_late_in_the_input_leaves_nothing(tmp_path):
    lines = [json.dumps(line) for line in corpus_lines(950)]
    lines[899] = '{"id": "x", "text": '
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run([path, tmp_path / "out", "--split", "0.8,0.2", "--shard-size", 100])
    assert result.exit_code == 1 and "[E020]" in result.said and "data.jsonl, line 900" in result.said
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_repeated_ids_are_found_exactly_as_before(tmp_path):
    lines = corpus_lines(60)
    lines[40]["id"] = lines[7]["id"]
    lines[50]["id"] = lines[7]["id"]
    lines[41]["id"] = 12345
    lines[42]["id"] = "12345"
    path = write_jsonl(tmp_path / "data.jsonl", lines)
    result = run([path, tmp_path / "out"])
    assert result.exit_code == 1 and "[E034]" in result.said and "data.jsonl, line 41" in result.said
    _, expected = read_records(path, skip_invalid=True)
    result = run([path, tmp_path / "out", "--skip-invalid", "--quiet"])
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "out" / "convert-report.json")
    assert [issue["line"] for issue in report["issues"]] == [41, 43, 51]
    assert report["issues"] == json.loads(json.dumps(expected.to_dict()["issues"]))
    assert len(DocBin().from_disk(tmp_path / "out" / "train.spacy")) == 57


def test_input_that_changes_between_the_passes(tmp_path, monkeypatch):
    from spacy_mlbert.data import stream

    path = write_jsonl(tmp_path / "data.jsonl", corpus_lines(30))
    first_pass = stream.index_corpus

    def and_then_edit(paths, options):
        index = first_pass(paths, options)
        write_jsonl(path, corpus_lines(30, seed=9))
        return index

    monkeypatch.setattr(stream, "index_corpus", and_then_edit)
    result = run([path, tmp_path / "out"])
    assert result.exit_code == 1 and "[E160]" in result.said and "data.jsonl, line 1" in result.said
    assert not (tmp_path / "out" / "train.spacy").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("value", ["0", "-3"])
def test_bad_shard_size(tmp_path, value):
    path = write_jsonl(tmp_path / "data.jsonl", corpus_lines(5))
    result = run([path, tmp_path / "out", "--shard-size", value])
    assert result.exit_code == 1 and "[E161]" in result.said


def test_duplicate_texts_found_by_the_whole_hash(monkeypatch):
    """Texts whose hashes share the first 8 bytes are told apart by the rest,
    and the first of each text is kept even when the sort interleaves them."""
    from spacy_mlbert.data import Record
    from spacy_mlbert.data import stream

    fake = {"a": b"\0" * 8 + b"\1" * 8, "b": b"\0" * 8 + b"\2" * 8, "c": b"\3" * 16}
    monkeypatch.setattr(stream, "text_hash", lambda text: fake[text])
    index = stream.CorpusIndex()
    for i, text in enumerate(["a", "b", "a", "c", "b", "a"]):
        index.add(Record(id=str(i), lang="en", text=text, cats={}))
    first, repeated = index.first_texts()
    assert first.tolist() == [True, True, False, True, False, False]
    assert repeated.tolist() == [True, True, False, False, False, False]
