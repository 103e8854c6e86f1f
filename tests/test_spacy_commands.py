"""spaCy's own commands on the shipped configs and on a pipeline trained from
one: `spacy init fill-config`, `spacy debug data`, `nlp.resume_training()`,
`spacy find-threshold` and `nlp.pipe(n_process=2)`.

The pipeline is trained by `spacy train` itself (its Python function) from
configs/mlbert_e5_small.cfg with a tiny random encoder in place of e5-small.
"""
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy import util
from spacy.cli.debug_data import debug_data
from spacy.cli.find_threshold import find_threshold
from spacy.cli.init_config import fill_config
from spacy.cli.train import train
from spacy.tokens import DocBin

from util import TRAIN_DATA, make_examples

REPO = Path(__file__).parent.parent
CONFIG_DIR = REPO / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.cfg"))
DEFAULT_CONFIG = CONFIG_DIR / "mlbert_e5_small.cfg"
TRAIN_DATA_TEXTS = [text for text, _ in TRAIN_DATA]
DEV_DATA = [
    ("Great phone, very useful every day.", {"positive": 1.0, "negative": 0.0, "useful": 1.0, "slow": 0.0}),
    ("Horrible, it came late and broken.", {"positive": 0.0, "negative": 1.0, "useful": 0.0, "slow": 1.0}),
    ("Me encanta, es útil y rápido.", {"positive": 1.0, "negative": 0.0, "useful": 1.0, "slow": 0.0}),
    ("很慢，很失望。", {"positive": 0.0, "negative": 1.0, "useful": 0.0, "slow": 1.0}),
]


def _write_docbin(path: Path, data) -> Path:
    nlp = spacy.blank("xx")
    docs = []
    for text, cats in data:
        doc = nlp.make_doc(text)
        doc.cats = dict(cats)
        docs.append(doc)
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


@pytest.fixture(scope="module")
def corpus(workdir):
    return {
        "paths.train": str(_write_docbin(workdir / "train.spacy", TRAIN_DATA)),
        "paths.dev": str(_write_docbin(workdir / "dev.spacy", DEV_DATA)),
    }


@pytest.fixture(scope="module")
def overrides(corpus, tiny_xlmr_dir):
    return {**corpus, "paths.encoder": str(tiny_xlmr_dir)}


@pytest.fixture(scope="module")
def trained_path(workdir, overrides):
    """`spacy train` on the shipped default config, two short epochs."""
    output = workdir / "trained"
    train(
        DEFAULT_CONFIG,
        output,
        overrides={**overrides, "training.max_epochs": 2, "training.eval_frequency": 2},
    )
    return output / "model-last"


def _leaves(section, prefix=()):
    for key, value in section.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_init_fill_config_keeps_every_shipped_setting(path, workdir):
    output = workdir / f"filled-{path.name}"
    fill_config(output, path, silent=True)
    shipped = util.load_config(path, interpolate=False)
    filled = util.load_config(output, interpolate=False)
    for keys, value in _leaves(shipped):
        section = filled
        for key in keys:
            section = section[key]
        assert section == value, ".".join(keys)
    # the filled config is complete: filling it again adds nothing, and it builds
    assert util.load_model_from_config(filled, auto_fill=True).config == filled
    nlp = util.load_model_from_config(filled, auto_fill=False, validate=True)
    assert nlp.pipe_names == ["transformer", "mlbert_textcat"]


def test_debug_data_runs_on_the_shipped_config(overrides, capsys):
    # 6 training texts are far below spaCy's 100 for a new pipeline: an error
    # in the summary, and so exit code 1; everything before it must pass
    with pytest.warns(UserWarning, match=r"W020"):
        with pytest.raises(SystemExit):
            debug_data(DEFAULT_CONFIG, config_overrides=overrides, silent=False)
    out = capsys.readouterr().out
    assert "Pipeline can be initialized with data" in out
    assert "Corpus is loadable" in out
    assert "6 training docs" in out and "4 evaluation docs" in out
    assert "Config validation error" not in out


def test_resume_training_on_a_pipeline_trained_from_the_shipped_config(trained_path):
    nlp = spacy.load(trained_path)
    # nlp.config keeps ${training.max_epochs} etc. unresolved: the schedule
    # keeps its peak rate after the warm-up and says so, instead of failing
    with pytest.warns(UserWarning, match=r"W020.*training\.max_epochs"):
        optimizer = nlp.resume_training()
    examples = make_examples(nlp)
    before = numpy.array([[doc.cats[label] for label in sorted(doc.cats)] for doc in nlp.pipe(TRAIN_DATA_TEXTS)])
    for _ in range(15):
        losses = nlp.update(examples, sgd=optimizer)
    after = numpy.array([[doc.cats[label] for label in sorted(doc.cats)] for doc in nlp.pipe(TRAIN_DATA_TEXTS)])
    assert numpy.isfinite(losses["mlbert_textcat"])
    assert numpy.abs(after - before).max() > 1e-3


def test_find_threshold_sweeps_the_default_of_labels_without_their_own(trained_path, corpus, workdir):
    # one label keeps its own threshold; the sweep decides the other three
    nlp = spacy.load(trained_path)
    nlp.get_pipe("mlbert_textcat").set_thresholds({"slow": 0.5})
    partly = workdir / "partly-tuned"
    nlp.to_disk(partly)
    _, _, scores = find_threshold(
        str(partly), Path(corpus["paths.dev"]), "mlbert_textcat", "threshold", "cats_macro_f", n_trials=3
    )
    assert len(set(scores.values())) > 1


def test_find_threshold_on_a_tuned_pipeline_says_to_use_tune_thresholds(trained_path, corpus, workdir):
    nlp = spacy.load(trained_path)
    textcat = nlp.get_pipe("mlbert_textcat")
    textcat.set_thresholds({label: 0.0 for label in textcat.labels})
    tuned = workdir / "tuned"
    nlp.to_disk(tuned)
    with pytest.raises(ValueError, match=r"E111.*tune-thresholds"):
        find_threshold(
            str(tuned), Path(corpus["paths.dev"]), "mlbert_textcat", "threshold", "cats_macro_f", n_trials=3
        )
    # an explicit scorer threshold still applies to every label
    reloaded = spacy.load(tuned)
    examples = make_examples(reloaded)
    none = reloaded.evaluate(examples, scorer_cfg={"threshold": 1.0})["cats_macro_f"]
    own = reloaded.evaluate(examples)["cats_macro_f"]
    assert none == 0.0 and own > 0.0


PIPE_SCRIPT = """
import json, sys
import spacy
nlp = spacy.load(sys.argv[1])
texts = [line for line in sys.argv[2:]] * 4
alone = [doc.cats for doc in nlp.pipe(texts)]  # runs torch's thread pool first
together = [doc.cats for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
print(json.dumps({"alone": alone, "together": together}))
"""


def test_pipe_with_two_processes_does_not_hang(trained_path):
    """Fork after torch has run its thread pool used to hang the children."""
    result = subprocess.run(
        [sys.executable, "-c", PIPE_SCRIPT, str(trained_path), *TRAIN_DATA_TEXTS[:3]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["together"]) == len(out["alone"]) == 12
    for a, b in zip(out["alone"], out["together"]):
        assert a.keys() == b.keys()
        assert all(abs(a[label] - b[label]) < 1e-5 for label in a)


def _child_threads(queue):
    import torch

    queue.put(torch.get_num_threads())


def test_forked_children_run_torch_on_one_thread():
    import torch

    spacy.blank("xx").add_pipe("mlbert_textcat")  # a component installs the guard
    if torch.get_num_threads() < 2:
        pytest.skip("one CPU thread: nothing to reduce")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_threads, args=(queue,))
    child.start()
    child.join(60)
    assert queue.get(timeout=5) == 1
    assert torch.get_num_threads() > 1  # the parent keeps its threads


def test_pyproject_requires_a_torch_that_loads_weights_safely():
    text = (REPO / "pyproject.toml").read_text(encoding="utf8")
    assert '"torch>=2.6"' in text
    assert '"torch>=2.1"' not in text
