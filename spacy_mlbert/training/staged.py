"""Staged training: one fine-tuning phase per language, then a joint phase.

Each language phase starts from the encoder the previous phase fine-tuned; the
joint phase trains on all languages from the last one, so it harmonises what
the language phases learned. The classifier head is trained anew in every
phase (only the encoder carries over), which keeps each phase a plain
``spacy train`` run with the project's own config.

Every phase trains: a language phase hands on its *last* encoder (after all
its epochs), and each phase's schedule and scoring are sized to the documents
that phase reads (see ``phase_overrides``), so a short phase is never reduced
to its first, untrained step.
"""
import logging
import math
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import spacy
from spacy.cli.train import train as spacy_train
from spacy.util import load_config

from ..quantization import check_trainable

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
# The project's schedule, whose decay length can be set per phase.
EPOCH_SCHEDULE = "spacy-mlbert.warmup_linear_epochs.v1"
FIXED_SIZE_BATCHER = "spacy.batch_by_sequence.v1"


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
    # a quantized encoder saved as a Hugging Face folder would train as garbage
    check_trainable(nlp, f"export the encoder of '{model_dir}' to train from it (train-staged)")
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

    What each phase does, and what it hands on:

    - A language phase trains for its epochs on that language's texts (its
      head and its dev score only serve the phase) and hands the next phase
      the encoder of its ``model-last``: the encoder after every update of
      the phase. Its ``model-best`` is not used: it is chosen on one
      language's dev with a head that is then thrown away, and on a phase
      shorter than ``training.eval_frequency`` it would be the first step,
      taken at a warm-up learning rate of 0, i.e. the encoder the phase
      started from.
    - The joint phase trains on every language and returns spaCy's
      ``model-best``, selected on the whole dev set.
    - With the fixed-size batcher (``spacy.batch_by_sequence.v1``) and a
      positive ``training.max_epochs``, every phase's run is sized to the
      documents it reads (``phase_overrides``): the held-out score is taken at
      the end of every epoch, the last included, and the project's
      learning-rate schedule decays to zero at the phase's last step (it
      would otherwise count the documents of every language). With another
      batcher the config's ``eval_frequency`` and schedule are used as they are.

    config_path (Union[str, Path]): Training config (as for spacy train).
    train_path (Union[str, Path]): Training DocBin with doc._.mlbert_lang set.
    dev_path (Union[str, Path]): Dev DocBin.
    output_dir (Union[str, Path]): One sub-folder per phase is written here.
    langs (Sequence[str]): Languages of the per-language phases, in order.
    encoder (str): The starting encoder (Hugging Face name or folder).
    gpu_id (int): -1 for CPU.
    stage_overrides (Optional[Dict]): Extra config overrides for the language
        phases only (e.g. {"training.max_epochs": 2}).
    RETURNS (Dict[str, Path]): Per language phase, the ``model-last`` folder
        whose encoder the next phase starts from; for "joint", the joint
        phase's ``model-best`` (the pipeline to use).
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
        overrides.update(phase_overrides(config_path, overrides, count_docs(train_path, [lang])))
        logger.info("Language phase %d/%d: %s from %s", i, len(langs), lang, current)
        _train(config_path, phase_dir, overrides, gpu_id)
        phases[lang] = phase_dir / "model-last"
        encoder_dir = export_encoder(
            phase_dir / "model-last", phase_dir / "encoder", tokenizer_source=tokenizer_source
        )
        current = str(encoder_dir)
    joint_dir = output_dir / "joint"
    logger.info("Joint phase from %s", current)
    overrides = {**base, "paths.encoder": current}
    overrides.update(phase_overrides(config_path, overrides, count_docs(train_path)))
    _train(config_path, joint_dir, overrides, gpu_id)
    phases["joint"] = joint_dir / "model-best"
    return phases


def count_docs(train_path: Union[str, Path], langs: Optional[Sequence[str]] = None) -> int:
    """Training documents a phase reads: those of ``langs`` (None: all),
    filtered as the project's corpus reader filters them."""
    from ..readers import create_multilingual_corpus_reader

    reader = create_multilingual_corpus_reader(train_path, langs=list(langs) if langs else None)
    return sum(1 for _ in reader(spacy.blank("xx")))


def phase_overrides(config_path: Union[str, Path], overrides: Dict, n_docs: int) -> Dict:
    """Config overrides that size one phase's run to its ``n_docs`` documents.

    With ``spacy.batch_by_sequence.v1`` (batches of ``size`` documents) and
    ``training.max_epochs`` = E > 0, an epoch is S = ceil(n_docs / size)
    steps. spaCy scores when ``step % eval_frequency == 0``, counting from
    step 0 (the first update, at a warm-up rate of 0): the run therefore
    scores every S steps and stops at step E * S, so every epoch's end is
    scored, the last one included, and ``model-best`` is never the untrained
    start. The project's schedule (spacy-mlbert.warmup_linear_epochs.v1)
    gets total_steps = E * S, so its rate reaches 0 exactly at that last
    step (the extra update there changes nothing), and a warm-up of at most
    one epoch. Anything else returns no overrides.

    config_path (Union[str, Path]): The training config.
    overrides (Dict): The overrides the phase already uses (they may change
        the batcher or the epochs).
    n_docs (int): Documents of the phase's training corpus.
    RETURNS (Dict): Overrides to add.
    """
    config = load_config(config_path, overrides=overrides, interpolate=True)
    training = config["training"]
    batcher = training.get("batcher", {})
    size = batcher.get("size")
    epochs = training.get("max_epochs", 0)
    if batcher.get("@batchers") != FIXED_SIZE_BATCHER or not isinstance(size, int) or size <= 0:
        return {}
    if not isinstance(epochs, int) or epochs <= 0 or n_docs <= 0 or training.get("max_steps"):
        return {}
    steps_per_epoch = math.ceil(n_docs / size)
    total = steps_per_epoch * epochs
    result = {
        "training.eval_frequency": steps_per_epoch,
        "training.max_epochs": epochs + 1,
        "training.max_steps": total,
    }
    schedule = training.get("optimizer", {}).get("learn_rate")
    if isinstance(schedule, dict) and schedule.get("@schedules") == EPOCH_SCHEDULE:
        result["training.optimizer.learn_rate.total_steps"] = total
        warmup = int(schedule.get("warmup_steps", 0))
        result["training.optimizer.learn_rate.warmup_steps"] = min(warmup, steps_per_epoch)
    return result


def _train(config_path: Union[str, Path], output: Path, overrides: Dict, gpu_id: int) -> None:
    output.mkdir(parents=True, exist_ok=True)
    spacy_train(Path(config_path), output, use_gpu=gpu_id, overrides=overrides)


def parse_langs(langs: str) -> List[str]:
    """'en, es,fr' -> ['en', 'es', 'fr']"""
    return [lang.strip() for lang in langs.split(",") if lang.strip()]
