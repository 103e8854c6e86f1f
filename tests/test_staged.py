from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import load_config, make_tempdir

from spacy_mlbert import install_extensions
from spacy_mlbert.training.staged import count_docs, export_encoder, phase_overrides, train_staged
from util import TRAIN_DATA

CONFIG = Path(__file__).parent.parent / "configs" / "mlbert_e5_small.cfg"
LANGS = ["en", "en", "es", "fr", "zh", "ar"]


@pytest.mark.slow
def test_staged_phases_chain_encoders(tiny_xlmr_dir):
    with make_tempdir() as tmp_dir:
        _docbin(tmp_dir)
        config = load_config(CONFIG, interpolate=False)
        config["training"]["max_epochs"] = 2
        config["training"]["eval_frequency"] = 2
        config.to_disk(tmp_dir / "quick.cfg")
        phases = train_staged(
            tmp_dir / "quick.cfg",
            tmp_dir / "train.spacy",
            tmp_dir / "train.spacy",
            tmp_dir / "staged",
            langs=["en", "zh"],
            encoder=str(tiny_xlmr_dir),
        )
        assert list(phases) == ["en", "zh", "joint"]
        zh_config = load_config(phases["zh"] / "config.cfg", interpolate=False)
        assert zh_config["paths"]["encoder"] == str(tmp_dir / "staged" / "phase1-en" / "encoder")
        assert zh_config["corpora"]["train"]["langs"] == ["zh"]
        joint_config = load_config(phases["joint"] / "config.cfg", interpolate=False)
        assert joint_config["paths"]["encoder"] == str(tmp_dir / "staged" / "phase2-zh" / "encoder")
        assert joint_config["corpora"]["train"]["langs"] is None
        joint = spacy.load(phases["joint"])
        assert set(joint("这个产品很好").cats) == set(TRAIN_DATA[0][1])


def test_staged_export_encoder_reloads_in_spacy_transformers(trained_nlp, tiny_xlmr_dir):
    from util import make_nlp

    with make_tempdir() as tmp_dir:
        trained_nlp.to_disk(tmp_dir / "pipeline")
        export_encoder(tmp_dir / "pipeline", tmp_dir / "encoder", tokenizer_source=tiny_xlmr_dir)
        assert (tmp_dir / "encoder" / "sentencepiece.bpe.model").exists()
        nlp = make_nlp(tmp_dir / "encoder")
        nlp.get_pipe("transformer").initialize(lambda: [])
        fine_tuned = trained_nlp.get_pipe("transformer").model.transformer.state_dict()
        reloaded = nlp.get_pipe("transformer").model.transformer.state_dict()
        name = "encoder.layer.0.attention.self.query.weight"
        assert (fine_tuned[name] == reloaded[name]).all()


def _docbin(tmp_dir: Path, data=TRAIN_DATA, langs=LANGS) -> Path:
    install_extensions()
    nlp = spacy.blank("xx")
    docs = []
    for (text, cats), lang in zip(data, langs):
        doc = nlp.make_doc(text)
        doc.cats = cats
        doc._.mlbert_lang = lang
        docs.append(doc)
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_dir / "train.spacy")
    return tmp_dir / "train.spacy"


def _encoder_weights(path) -> dict:
    from transformers import AutoModel

    return {k: v.clone() for k, v in AutoModel.from_pretrained(str(path)).state_dict().items()}


def _changed(before: dict, after: dict) -> list:
    return [k for k in before if k in after and not (before[k] == after[k]).all()]


def test_staged_phase_overrides_score_every_epoch_end():
    with make_tempdir() as tmp_dir:
        train = _docbin(tmp_dir)
        assert count_docs(train) == 6 and count_docs(train, ["en"]) == 2 and count_docs(train, ["de"]) == 0
        overrides = phase_overrides(CONFIG, {"training.max_epochs": 3}, 40)  # batches of 16: 3 per epoch
        assert overrides == {
            "training.eval_frequency": 3,
            "training.max_epochs": 4,
            "training.max_steps": 9,
            "training.optimizer.learn_rate.total_steps": 9,
            "training.optimizer.learn_rate.warmup_steps": 3,
        }
        # a batcher without a fixed size: the config's own settings stay
        words = {"training.batcher": {"@batchers": "spacy.batch_by_words.v1", "size": 1000, "tolerance": 0.2, "discard_oversize": False, "get_length": None}}
        assert phase_overrides(CONFIG, words, 40) == {}
        assert phase_overrides(CONFIG, {}, 0) == {}


def test_staged_short_phase_changes_the_encoder(tiny_xlmr_dir):
    """A phase of 2 documents for 2 epochs (2 steps) under the shipped
    eval_frequency of 25: it must still hand on a trained encoder, and the
    joint phase must return a trained pipeline."""
    with make_tempdir() as tmp_dir:
        train = _docbin(tmp_dir)
        config = load_config(CONFIG, interpolate=False)
        assert config["training"]["eval_frequency"] > 2  # the case that used to export the start
        config["training"]["max_epochs"] = 2
        config.to_disk(tmp_dir / "short.cfg")
        phases = train_staged(
            tmp_dir / "short.cfg", train, train, tmp_dir / "staged", langs=["en"], encoder=str(tiny_xlmr_dir)
        )
        assert phases["en"] == tmp_dir / "staged" / "phase1-en" / "model-last"
        start = _encoder_weights(tiny_xlmr_dir)
        exported = _encoder_weights(tmp_dir / "staged" / "phase1-en" / "encoder")
        assert set(exported) == set(start)
        assert _changed(start, exported), "the language phase exported the encoder it started from"
        phase_config = load_config(phases["en"] / "config.cfg", interpolate=False)
        assert phase_config["training"]["eval_frequency"] == 1 and phase_config["training"]["max_steps"] == 2
        joint = spacy.load(phases["joint"])
        joint_encoder = joint.get_pipe("transformer").model.transformer.state_dict()
        assert _changed(exported, joint_encoder), "the joint phase returned its untrained start"
        assert set(joint("这个产品很好").cats) == set(TRAIN_DATA[0][1])
