"""The transformer component's lean serialisation (layers/lean_weights.py):
weights saved in the safetensors layout and loaded as views of the file's
bytes, spacy-transformers' own format still loading, training on a loaded
pipeline writing only to its own copy."""
import numpy
import pytest
import spacy
import torch
from spacy.util import make_tempdir
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model

from spacy_mlbert.layers.lean_weights import MAGIC

from util import TRAIN_DATA

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
