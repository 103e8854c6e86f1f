import itertools
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import make_tempdir, registry
from thinc.api import Config

from spacy_mlbert.schedules import count_docbin_docs, steps_for, warmup_linear_epochs

DEFAULT_CONFIG = Path(__file__).parent.parent / "configs" / "mlbert_e5_small.cfg"


def _write_docbin(path, n):
    nlp = spacy.blank("xx")
    DocBin(docs=[nlp(f"text {i}") for i in range(n)]).to_disk(path)


def _first(schedule, n):
    return list(itertools.islice(schedule, n))


def test_decay_ends_with_the_last_epoch():
    with make_tempdir() as d:
        _write_docbin(d / "train.spacy", 40)
        rates = _first(
            warmup_linear_epochs(1.0, warmup_steps=2, epochs=3, batch_size=16, train_path=d / "train.spacy"),
            12,
        )
    # 40 docs / 16 = 3 batches per epoch, 3 epochs = 9 steps
    assert rates[:3] == [0.0, 0.5, 1.0]
    assert rates[8] > 0.0
    assert rates[9] == 0.0 and rates[11] == 0.0
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))


def test_folder_of_docbins_is_counted_like_spacy_corpus_reads_it():
    with make_tempdir() as d:
        (d / "part").mkdir()
        _write_docbin(d / "a.spacy", 5)
        _write_docbin(d / "part" / "b.spacy", 7)
        assert count_docbin_docs(d) == 12
    assert steps_for(12, 5, 2) == 6


def test_explicit_total_steps_wins():
    rates = _first(warmup_linear_epochs(1.0, 0, epochs=1, batch_size=1, train_path=None, total_steps=4), 5)
    assert rates == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_without_a_corpus_the_rate_stays_at_its_peak(capsys):
    rates = _first(warmup_linear_epochs(1.0, 1, epochs=4, batch_size=16, train_path=None), 50)
    assert rates[0] == 0.0 and set(rates[1:]) == {1.0}
    assert "W003" in capsys.readouterr().out


def test_missing_corpus_is_a_coded_error():
    with make_tempdir() as d:
        with pytest.raises(ValueError, match=r"E099.*nothing\.spacy"):
            warmup_linear_epochs(1.0, 1, epochs=1, batch_size=1, train_path=d / "nothing.spacy")


def test_project_config_wires_the_schedule_to_the_training_settings():
    """The shipped configs interpolate epochs, batch size and corpus path."""
    with make_tempdir() as d:
        _write_docbin(d / "train.spacy", 33)
        config = Config().from_disk(DEFAULT_CONFIG, overrides={"paths.train": str(d / "train.spacy")})
        section = config["training"]["optimizer"]["learn_rate"]
        assert section["epochs"] == config["training"]["max_epochs"]
        assert section["batch_size"] == config["training"]["batcher"]["size"]
        schedule = registry.resolve({"s": section})["s"]
        rates = _first(schedule, 20)
    n_steps = steps_for(33, config["training"]["batcher"]["size"], config["training"]["max_epochs"])
    assert rates[n_steps - 1] > 0.0 and rates[n_steps] == 0.0


def test_unresolved_variables_give_a_constant_rate_and_a_coded_warning():
    """What spaCy's create_optimizer passes outside `spacy train`
    (nlp.resume_training(), `spacy debug data`): the config's text."""
    config = Config().from_disk(DEFAULT_CONFIG, interpolate=False)
    section = dict(config["training"]["optimizer"]["learn_rate"])
    assert section["epochs"] == "${training.max_epochs}"
    with pytest.warns(UserWarning, match=r"W020.*training\.batcher\.size.*paths\.train"):
        schedule = registry.resolve({"s": section})["s"]
    assert set(_first(schedule, 30)) == {section["initial_rate"]}


def test_resolved_variables_are_not_mistaken_for_unresolved(recwarn):
    with make_tempdir() as d:
        _write_docbin(d / "train.spacy", 4)
        # a path with "$" and braces in it, but not a variable
        folder = d / "a${b}"
        folder.mkdir()
        _write_docbin(folder / "train.spacy", 4)
        rates = _first(warmup_linear_epochs(1.0, 0, epochs="2", batch_size=2, train_path=folder / "train.spacy"), 5)
    assert rates == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert not [w for w in recwarn if "W020" in str(w.message)]


def test_a_non_integer_epoch_count_is_a_coded_error():
    section = {
        "@schedules": "spacy-mlbert.warmup_linear_epochs.v1",
        "initial_rate": 1.0,
        "warmup_steps": 0,
        "epochs": "four",
        "batch_size": 2,
    }
    with pytest.raises(ValueError, match=r"E110.*epochs.*'four'"):
        registry.resolve({"s": section})
