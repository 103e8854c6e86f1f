"""The transformer component's lean serialisation (layers/lean_weights.py):
weights saved in the safetensors layout and loaded as views of the file's
bytes, spacy-transformers' own format still loading, training on a loaded
pipeline writing only to its own copy."""
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.util import make_tempdir
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model

from spacy_mlbert.layers.lean_weights import MAGIC

from util import TRAIN_DATA, make_examples

TEXTS = [text for text, _ in TRAIN_DATA] + ["", "Totally new text 新しい"]


def _probabilities(nlp):
    return numpy.asarray([[doc.cats[label] for label in sorted(doc.cats)] for doc in nlp.pipe(TEXTS)])


def _encoder(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]._model


def test_saved_in_the_lean_layout_and_loaded_identically(trained_nlp):
    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir)
        assert (tmp_dir / "transformer" / "model").read_bytes()[: len(MAGIC)] == MAGIC
        nlp2 = spacy.load(tmp_dir)
    numpy.testing.assert_array_equal(_probabilities(nlp2), _probabilities(trained_nlp))
    state1, state2 = _encoder(trained_nlp).state_dict(), _encoder(nlp2).state_dict()
    assert state1.keys() == state2.keys()
    for name in state1:
        assert torch.equal(state1[name], state2[name]), name
    # the non-persistent buffers (position ids) are built, not left uninitialised
    for name, buffer in _encoder(nlp2).named_buffers():
        torch.testing.assert_close(buffer, dict(_encoder(trained_nlp).named_buffers())[name])


def test_loaded_weights_are_views_of_the_file_bytes(trained_nlp):
    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir)
        nlp2 = spacy.load(tmp_dir)
    shim = nlp2.get_pipe("transformer").model.layers[0].shims[0]
    assert shim._lean_borrowed
    embeddings = shim._model.get_input_embeddings().weight
    # a view of a bytes object: torch allocated no storage of its own for it
    assert not embeddings.untyped_storage().resizable()


def test_pipelines_in_spacy_transformers_format_still_load(trained_nlp):
    transformer_model = trained_nlp.get_pipe("transformer").model
    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir)
        # what a pipeline saved before the lean layout holds
        (tmp_dir / "transformer" / "model").write_bytes(Model.to_bytes(transformer_model))
        nlp2 = spacy.load(tmp_dir)
    assert not getattr(nlp2.get_pipe("transformer").model.layers[0].shims[0], "_lean_borrowed", False)
    numpy.testing.assert_array_equal(_probabilities(nlp2), _probabilities(trained_nlp))


def test_bytes_round_trip_of_the_component_is_lean_too(trained_nlp):
    transformer = trained_nlp.get_pipe("transformer")
    data = transformer.model.to_bytes()
    assert data[: len(MAGIC)] == MAGIC
    nlp2 = spacy.blank("xx").from_config(trained_nlp.config)
    nlp2.from_bytes(trained_nlp.to_bytes())
    numpy.testing.assert_array_equal(_probabilities(nlp2), _probabilities(trained_nlp))


def test_training_a_loaded_pipeline_copies_the_weights_first(trained_nlp):
    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir)
        nlp2 = spacy.load(tmp_dir)
    transformer = nlp2.get_pipe("transformer").model
    shim = transformer.layers[0].shims[0]
    views = shim._model.state_dict()  # tensors sharing the loaded bytes
    before = {name: tensor.clone() for name, tensor in views.items()}
    transformer.predict([nlp2.make_doc("a prediction changes nothing")])
    assert shim._lean_borrowed
    transformer.begin_update([nlp2.make_doc("a training step owns its weights")])
    assert not shim._lean_borrowed
    with torch.no_grad():  # what an optimizer step does to the encoder
        for param in shim._model.parameters():
            param.add_(1.0)
    for name, view in views.items():
        assert torch.equal(view, before[name]), f"the loaded bytes of {name} were written to"


def test_an_uninitialised_transformer_round_trips(tiny_xlmr_dir):
    from util import make_nlp

    nlp = make_nlp(tiny_xlmr_dir, pooling="mean")
    model = nlp.get_pipe("transformer").model
    data = model.to_bytes()
    assert data[: len(MAGIC)] != MAGIC  # nothing to save in the lean layout yet
    model.from_bytes(data)
    assert isinstance(model.layers[0].shims[0], HFShim)


LOAD_PROBE = r"""
import gc, sys
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
import spacy, spacy_mlbert, torch  # noqa: F401
gc.collect()
before = rss("VmRSS:")
nlp = spacy.load(sys.argv[1])
gc.collect()
print(before, rss("VmRSS:"), rss("VmHWM:"))
"""


@pytest.fixture(scope="module")
def wide_pipeline(tiny_bert_dir, tmp_path_factory):
    """A pipeline with ~80 MB of encoder weights, most in the embeddings
    (the e5/XLM-R shape), saved; its weights file's size in MB."""
    import shutil

    from transformers import BertConfig, BertModel

    from util import make_nlp

    tmp_path = tmp_path_factory.mktemp("wide")
    encoder_dir = tmp_path / "wide-bert"
    shutil.copytree(tiny_bert_dir, encoder_dir)
    config = BertConfig.from_pretrained(tiny_bert_dir)
    config.vocab_size, config.hidden_size, config.intermediate_size = 40_000, 512, 512
    config.num_attention_heads, config.num_hidden_layers = 4, 1
    BertModel(config).save_pretrained(encoder_dir)
    nlp = make_nlp(encoder_dir, pooling="mean")
    nlp.initialize(get_examples=lambda: make_examples(nlp))
    nlp.to_disk(tmp_path / "nlp")
    weights_mb = (tmp_path / "nlp" / "transformer" / "model").stat().st_size / 2**20
    assert weights_mb > 70
    return tmp_path / "nlp", weights_mb


def _load_memory(path):
    """RSS before spacy.load, after it, and the peak, in a fresh process (MB)."""
    out = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(path)], capture_output=True, text=True, check=True)
    return tuple(float(x) for x in out.stdout.split()[-3:])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS/VmHWM from /proc")
def test_loading_peaks_near_what_the_loaded_pipeline_holds(wide_pipeline):
    """The load peak stays within a fraction of the weights above the
    loaded size (spacy-transformers' own path peaks about four weight
    copies above it)."""
    path, weights_mb = wide_pipeline
    before, steady, peak = _load_memory(path)
    assert steady - before > 0.8 * weights_mb  # the weights are in memory
    assert peak - steady < 0.3 * weights_mb, (before, steady, peak, weights_mb)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS/VmHWM from /proc")
def test_an_int8_pipeline_loads_without_its_fp32_weights(wide_pipeline, tmp_path):
    """``quantize --quantize int8-embeddings`` saves int8 weights: loading
    holds about a third of the fp32 weights (on disk too) and never all of them."""
    from spacy_mlbert.cli.quantize import quantize_model

    path, weights_mb = wide_pipeline
    quantize_model(path, tmp_path / "int8", how="int8-embeddings")
    assert (tmp_path / "int8" / "transformer" / "model").stat().st_size < 0.4 * weights_mb * 2**20
    _, fp32_steady, _ = _load_memory(path)
    before, steady, peak = _load_memory(tmp_path / "int8")
    figures = (before, steady, peak, fp32_steady, weights_mb)
    # loaded: at least half the fp32 weights fewer than the fp32 pipeline holds
    assert steady < fp32_steady - 0.5 * weights_mb, figures
    # loading: never as much as the loaded fp32 pipeline (no fp32 copy)
    assert peak < fp32_steady, figures
