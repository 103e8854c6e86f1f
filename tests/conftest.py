"""Shared fixtures: tiny encoders (built once per session, offline) and options.

``--slow`` runs tests marked slow (real e5-small weights, the whole project
workflow); ``--gpu`` runs tests that need a CUDA GPU.
"""
from pathlib import Path

import pytest
from spacy.util import fix_random_seed, make_tempdir

from encoders import build_tiny_bert, build_tiny_xlmr
from util import TOKENIZER_TEXTS, make_examples, make_nlp


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="include slow tests")
    parser.addoption("--gpu", action="store_true", help="include GPU tests")


def pytest_collection_modifyitems(config, items):
    for marker in ("slow", "gpu"):
        if config.getoption(f"--{marker}"):
            continue
        skip = pytest.mark.skip(reason=f"needs --{marker}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def encoders_root():
    with make_tempdir() as tmp_dir:
        yield Path(tmp_dir)


@pytest.fixture(scope="module")
def workdir():
    """A temporary folder for one test module's files (pipelines, data)."""
    with make_tempdir() as tmp_dir:
        yield Path(tmp_dir)


@pytest.fixture(scope="session")
def tiny_xlmr_dir(encoders_root):
    return build_tiny_xlmr(TOKENIZER_TEXTS, encoders_root / "tiny-xlmr")


@pytest.fixture(scope="session")
def tiny_bert_dir(encoders_root):
    return build_tiny_bert(TOKENIZER_TEXTS, encoders_root / "tiny-bert")


@pytest.fixture(scope="session")
def trained_nlp(tiny_xlmr_dir):
    """A transformer + mlbert_textcat pipeline overfitted on TRAIN_DATA."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_xlmr_dir, pooling="mean", textcat_config={"pos_weight": "auto"})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer)
    return nlp


@pytest.fixture
def synced_inodes(monkeypatch):
    """The inodes os.fsync is called on during the test (files and folders)."""
    import os

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced
