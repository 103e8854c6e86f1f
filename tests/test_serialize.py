import os
import shutil
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.util import fix_random_seed, make_tempdir

from util import TRAIN_DATA, make_examples, make_nlp, transformer_config

TEXTS = [text for text, _ in TRAIN_DATA] + ["", "Totally new text 新しい"]


def _probabilities(nlp, texts=TEXTS):
    return numpy.asarray([[doc.cats[label] for label in sorted(doc.cats)] for doc in nlp.pipe(texts)])


@pytest.fixture
def tuned(trained_nlp):
    """trained_nlp's component with per-label thresholds, restored afterwards:
    the session's other tests expect the default 0.5."""
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    before = dict(textcat.cfg.get("thresholds", {}))
    textcat.set_thresholds({"useful": 0.3, "slow": 0.7})
    yield textcat
    textcat.cfg["thresholds"] = before


def test_serialize_to_disk_and_load_identical(trained_nlp, tuned):
    textcat = tuned
    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir)
        nlp2 = spacy.load(tmp_dir)
    textcat2 = nlp2.get_pipe("mlbert_textcat")
    assert textcat2.labels == textcat.labels
    assert textcat2.thresholds == textcat.thresholds
    assert textcat2.pos_weights == textcat.pos_weights
    numpy.testing.assert_array_equal(_probabilities(nlp2), _probabilities(trained_nlp))
    for doc1, doc2 in zip(trained_nlp.pipe(TEXTS), nlp2.pipe(TEXTS)):
        assert doc1._.mlbert_labels == doc2._.mlbert_labels


def test_serialize_to_bytes_and_back_identical(trained_nlp, tuned):
    textcat = tuned
    nlp2 = spacy.blank("xx").from_config(trained_nlp.config)
    nlp2.from_bytes(trained_nlp.to_bytes())
    textcat2 = nlp2.get_pipe("mlbert_textcat")
    assert textcat2.thresholds == textcat.thresholds
    assert textcat2.pos_weights == textcat.pos_weights
    numpy.testing.assert_array_equal(_probabilities(nlp2), _probabilities(trained_nlp))


def test_serialize_component_bytes_exclude_cfg(trained_nlp):
    textcat = trained_nlp.get_pipe("mlbert_textcat")
    data = textcat.to_bytes(exclude=["vocab"])
    same_model = {"model": trained_nlp.config["components"]["mlbert_textcat"]["model"]}
    other = spacy.blank("xx").add_pipe("mlbert_textcat", config=same_model)
    other.from_bytes(data, exclude=["vocab"])
    assert other.labels == textcat.labels and other.thresholds == textcat.thresholds
    blank = spacy.blank("xx").add_pipe("mlbert_textcat", config=same_model)
    blank.from_bytes(textcat.to_bytes(exclude=["vocab", "cfg"]), exclude=["vocab", "cfg"])
    assert blank.labels == ()


def test_serialize_before_initialize(tiny_xlmr_dir):
    nlp = make_nlp(tiny_xlmr_dir)
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        nlp2 = spacy.load(tmp_dir)
    examples = make_examples(nlp2)
    nlp2.initialize(get_examples=lambda: examples)
    assert nlp2.get_pipe("mlbert_textcat").labels == ("positive", "negative", "useful", "slow")


def test_serialize_loads_offline_without_source_encoder(tiny_bert_dir):
    """The saved pipeline carries the encoder: it loads with the hub off and the
    folder it was built from deleted."""
    fix_random_seed(0)
    with make_tempdir() as tmp_dir:
        encoder_copy = shutil.copytree(tiny_bert_dir, tmp_dir / "encoder")
        nlp = make_nlp(encoder_copy)
        examples = make_examples(nlp)
        optimizer = nlp.initialize(get_examples=lambda: examples)
        nlp.update(examples, sgd=optimizer)
        nlp.to_disk(tmp_dir / "pipeline")
        expected = _probabilities(nlp)
        shutil.rmtree(encoder_copy)
        numpy.save(tmp_dir / "expected.npy", expected)
        code = (
            "import numpy, spacy, sys;"
            f"nlp = spacy.load({str(tmp_dir / 'pipeline')!r});"
            f"texts = {TEXTS!r};"
            "got = numpy.asarray([[d.cats[l] for l in sorted(d.cats)] for d in nlp.pipe(texts)]);"
            f"numpy.testing.assert_array_equal(got, numpy.load({str(tmp_dir / 'expected.npy')!r}))"
        )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]


def test_serialize_missing_encoder_path_is_a_clear_error():
    nlp = spacy.blank("xx")
    with make_tempdir() as tmp_dir:
        nlp.add_pipe(
            "transformer", config=transformer_config(tmp_dir / "no-such-encoder")
        )
    nlp.add_pipe("mlbert_textcat")
    with pytest.raises(ValueError, match="E010"):
        nlp.initialize(get_examples=lambda: make_examples(nlp))


def test_replace_listeners_keeps_predictions_checks_and_loads(tiny_xlmr_dir):
    """nlp.replace_listeners gives mlbert_textcat its own copy of the
    transformer: same predictions, a config that builds the same model (it
    saves and loads without the shared component), and the copy keeps the
    E010/W010 checks and a span getter bound to itself."""
    from functools import partial

    from spacy_mlbert.layers.transformer import _forward_counting_cuts

    spans = {"@span_getters": "spacy-mlbert.wordpiece_strided_spans.v1", "window": 16, "stride": 12}
    nlp = make_nlp(tiny_xlmr_dir, pooling="mean", get_spans=spans)
    examples = make_examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    long_texts = TEXTS + [" ".join(TEXTS)]  # several windows
    before = _probabilities(nlp, long_texts)

    nlp.replace_listeners("transformer", "mlbert_textcat", ["model.tok2vec"])
    tok2vec_cfg = nlp.config["components"]["mlbert_textcat"]["model"]["tok2vec"]
    assert tok2vec_cfg["@architectures"] == "spacy-mlbert.WordpieceTransformer.v2"
    assert tok2vec_cfg["pooling"] == "mean" and tok2vec_cfg["name"] == str(tiny_xlmr_dir)
    nlp.remove_pipe("transformer")
    numpy.testing.assert_allclose(_probabilities(nlp, long_texts), before, rtol=1e-5, atol=1e-6)

    own = [node for node in nlp.get_pipe("mlbert_textcat").model.walk() if node.name == "transformer"]
    assert len(own) == 1
    assert isinstance(own[0]._func, partial) and own[0]._func.func is _forward_counting_cuts
    assert own[0].attrs["get_spans"]._model is own[0]
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir)
        nlp2 = spacy.load(tmp_dir)
    assert nlp2.pipe_names == ["mlbert_textcat"]
    numpy.testing.assert_allclose(_probabilities(nlp2, long_texts), before, rtol=1e-5, atol=1e-6)
