from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import load_config, make_tempdir

from spacy_mlbert import install_extensions
from spacy_mlbert.training.staged import export_encoder, train_staged
from util import TRAIN_DATA

CONFIG = Path(__file__).parent.parent / "configs" / "mlbert_e5_small.cfg"
LANGS = ["en", "en", "es", "fr", "zh", "ar"]


@pytest.mark.slow
def test_staged_phases_chain_encoders(tiny_xlmr_dir):
    install_extensions()
    nlp = spacy.blank("xx")
    docs = []
    for (text, cats), lang in zip(TRAIN_DATA, LANGS):
        doc = nlp.make_doc(text)
        doc.cats = cats
        doc._.mlbert_lang = lang
        docs.append(doc)
    with make_tempdir() as tmp_dir:
        DocBin(docs=docs, store_user_data=True).to_disk(tmp_dir / "train.spacy")
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
