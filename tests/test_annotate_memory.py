"""annotate's memory stays flat over any stream length: every window is
predicted inside ``nlp.memory_zone()``, so the words a stream brings do not
pile up in the vocab (locally, in the --n-process workers, in Ray actors)."""
import json

import pytest

from engines_util import save_tiny_pipeline
from spacy_mlbert.annotate import workers
from spacy_mlbert.annotate.jsonl import annotate_jsonl
from spacy_mlbert.evaluation import find_textcat, load_pipeline

# Without the zones each of these texts adds at least one string (a new word).
N_DOCS = 50_000
# What the vocab may gain at most, whatever the stream's length.
MAX_NEW_STRINGS = 100


def n_lexemes(vocab) -> int:
    # len(vocab) counts every lexeme ever added, also those a zone freed
    return sum(1 for _ in vocab)


def unique_texts(n: int, start: int = 0):
    return [f"w{i}q" for i in range(start, start + n)]


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model")


def test_annotating_a_long_stream_keeps_the_vocab_flat(workdir, model_dir):
    nlp = load_pipeline(model_dir)
    source = workdir / "long.jsonl"
    with source.open("w", encoding="utf8") as out:
        for text in unique_texts(N_DOCS):
            out.write(json.dumps({"text": text}) + "\n")
    strings, lexemes = len(nlp.vocab.strings), n_lexemes(nlp.vocab)
    output = workdir / "long-out.jsonl"
    counts = annotate_jsonl(nlp, source, output, batch_size=1000, progress=False)
    assert counts["written"] == N_DOCS
    assert len(nlp.vocab.strings) - strings < MAX_NEW_STRINGS
    assert n_lexemes(nlp.vocab) - lexemes < MAX_NEW_STRINGS
    assert "w123q" not in nlp.vocab.strings
    # the predictions were read while the documents were valid
    with output.open(encoding="utf8") as file_:
        first = json.loads(next(file_))
    assert first["text"] == "w0q" and len(first["cats"]) == 4


def test_a_worker_process_keeps_its_vocab_flat(model_dir):
    """The function each --n-process worker runs, here in this process."""
    nlp = load_pipeline(model_dir)
    _, textcat = find_textcat(nlp)
    workers._start(nlp, list(textcat.labels))
    strings = len(nlp.vocab.strings)
    for start in range(0, 5000, 500):
        predictions = workers._predict(unique_texts(500, start))
        assert len(predictions) == 500
    assert len(nlp.vocab.strings) - strings < MAX_NEW_STRINGS


def test_a_ray_actor_keeps_its_vocab_flat(workdir, model_dir):
    """RayAnnotator, created here (no cluster): each window in its own zone."""
    pytest.importorskip("ray")
    from spacy_mlbert.annotate.engines.ray_actors import RayAnnotator

    source = workdir / "ray-in.jsonl"
    lines = [(json.dumps({"text": text}) + "\n").encode("utf8") for text in unique_texts(5000)]
    source.write_bytes(b"".join(lines))
    out_dir = workdir / "ray-out"
    out_dir.mkdir()
    options = {
        "sources": [str(source)],
        "out_dir": str(out_dir),
        "batch_size": 500,
        "skip_invalid": False,
        "cats_key": "cats",
        "labels_key": "labels",
        "parquet": False,
        "num_cpus": 1,
    }
    actor = RayAnnotator(str(model_dir), options)
    strings = len(actor.nlp.vocab.strings)
    summary = actor.annotate_run(0, list(range(1, len(lines) + 1)), lines)
    assert summary["written"] == 5000 and summary["fatal"] is None
    assert len(actor.nlp.vocab.strings) - strings < MAX_NEW_STRINGS
