"""Staged training: one fine-tuning phase per language, then a joint phase.

Each language phase starts from the encoder the previous phase fine-tuned; the
joint phase trains on all languages from the last one, so it harmonises what
the language phases learned. The classifier head is trained anew in every
phase (only the encoder carries over), which keeps each phase a plain
``spacy train`` run with the project's own config.
"""
import logging
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import spacy
from spacy.cli.train import train as spacy_train

logger = logging.getLogger("spacy_mlbert")

# Tokenizer files never change in fine-tuning; spacy-transformers needs the
# slow-tokenizer vocabulary (e.g. sentencepiece.bpe.model) next to the weights.
TOKENIZER_FILES = (
    "sentencepiece.bpe.model",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def export_encoder(
    model_dir: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    tokenizer_source: Optional[Union[str, Path]] = None,
    component: str = "transformer",
) -> Path:
    """Save the fine-tuned encoder of a trained pipeline as a Hugging Face folder.

    model_dir (Union[str, Path]): A trained pipeline.
    output_dir (Union[str, Path]): The folder to write.
    tokenizer_source (Optional[Union[str, Path]]): Local encoder folder whose
        tokenizer files are copied; without it, the pipeline's tokenizer is saved.
    component (str): Name of the transformer component.
    RETURNS (Path): output_dir.
    """
    output_dir = Path(output_dir)
    nlp = spacy.load(model_dir)
    transformer = nlp.get_pipe(component).model
    transformer.transformer.save_pretrained(output_dir)
    source = Path(tokenizer_source) if tokenizer_source is not None else None
    if source is not None and source.is_dir():
        for name in TOKENIZER_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, output_dir / name)
    else:
        transformer.tokenizer.save_pretrained(output_dir)
    return output_dir


def train_staged(
    config_path: Union[str, Path],
    train_path: Union[str, Path],
    dev_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    langs: Sequence[str],
    encoder: str,
    gpu_id: int = -1,
    stage_overrides: Optional[Dict] = None,
) -> Dict[str, Path]:
    """Run the language phases in order, then the joint phase.

    config_path (Union[str, Path]): Training config (as for spacy train).
    train_path (Union[str, Path]): Training DocBin with doc._.mlbert_lang set.
    dev_path (Union[str, Path]): Dev DocBin.
    output_dir (Union[str, Path]): One sub-folder per phase is written here.
    langs (Sequence[str]): Languages of the per-language phases, in order.
    encoder (str): The starting encoder (Hugging Face name or folder).
    gpu_id (int): -1 for CPU.
    stage_overrides (Optional[Dict]): Extra config overrides for the language
        phases only (e.g. {"training.max_epochs": 2}).
    RETURNS (Dict[str, Path]): The model-best folder of every phase.
    """
    output_dir = Path(output_dir)
    base = {"paths.train": str(train_path), "paths.dev": str(dev_path)}
    tokenizer_source = encoder
    current = encoder
    phases: Dict[str, Path] = {}
    for i, lang in enumerate(langs, start=1):
        phase_dir = output_dir / f"phase{i}-{lang}"
        overrides = {
            **base,
            **(stage_overrides or {}),
            "paths.encoder": current,
            "corpora.train.langs": [lang],
            "corpora.dev.langs": [lang],
        }
        logger.info("Language phase %d/%d: %s from %s", i, len(langs), lang, current)
        _train(config_path, phase_dir, overrides, gpu_id)
        phases[lang] = phase_dir / "model-best"
        encoder_dir = export_encoder(
            phase_dir / "model-best", phase_dir / "encoder", tokenizer_source=tokenizer_source
        )
        current = str(encoder_dir)
    joint_dir = output_dir / "joint"
    logger.info("Joint phase from %s", current)
    _train(config_path, joint_dir, {**base, "paths.encoder": current}, gpu_id)
    phases["joint"] = joint_dir / "model-best"
    return phases


def _train(config_path: Union[str, Path], output: Path, overrides: Dict, gpu_id: int) -> None:
    output.mkdir(parents=True, exist_ok=True)
    spacy_train(Path(config_path), output, use_gpu=gpu_id, overrides=overrides)


def parse_langs(langs: str) -> List[str]:
    """'en, es,fr' -> ['en', 'es', 'fr']"""
    return [lang.strip() for lang in langs.split(",") if lang.strip()]
