"""The local engine with several processes: nlp.pipe(n_process=2) in annotate and evaluate."""
import json

import numpy
import pytest

from engines_util import BATCH, corpus, local_output, make_gold, save_tiny_pipeline, write_lines
from spacy_mlbert.annotate.engines.local import predict_arrays_local
from spacy_mlbert.evaluation import load_pipeline, predict_arrays


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model")


def test_local_n_process_matches_one_process(workdir, model_dir):
    nlp = load_pipeline(model_dir)
    source = write_lines(workdir / "np.jsonl", corpus(40))
    _, one = local_output(nlp, source, workdir / "np1.jsonl")
    _, two = local_output(nlp, source, workdir / "np2.jsonl", n_process=2)
    rows_one = [json.loads(line) for line in one.splitlines()]
    rows_two = [json.loads(line) for line in two.splitlines()]
    assert [r["id"] for r in rows_two] == [r["id"] for r in rows_one]
    for a, b in zip(rows_one, rows_two):
        assert a["labels"] == b["labels"]
        numpy.testing.assert_allclose(list(a["cats"].values()), list(b["cats"].values()), atol=1e-6)
    # evaluation: the gold values stay here, the texts go to the processes
    data = workdir / "np.spacy"
    make_gold(nlp, 3).to_disk(data)
    expected = predict_arrays(nlp, data, batch_size=BATCH)
    arrays = predict_arrays_local(nlp, data, batch_size=BATCH, n_process=2)
    numpy.testing.assert_allclose(arrays.y_prob, expected.y_prob, atol=1e-6)
    assert numpy.array_equal(arrays.known, expected.known) and arrays.ids == expected.ids


def test_gold_labels_are_checked_before_predicting(workdir, model_dir):
    """With several processes, gold labels the model lacks are refused (E074)
    before any process starts, as in the one-process path."""
    nlp = load_pipeline(model_dir)
    doc_bin = make_gold(nlp, 1)
    doc = nlp.make_doc("An extra label.")
    doc.cats = {"positive": 1.0, "sarcastic": 0.0}
    doc_bin.add(doc)
    data = workdir / "extra.spacy"
    doc_bin.to_disk(data)
    with pytest.raises(ValueError, match="E074.*sarcastic"):
        predict_arrays_local(nlp, data, batch_size=BATCH, n_process=2)
