"""Shared parts of the benchmark scripts: data, anchors, spaCy training, scoring.

Everything here goes through the project's own code where the project has
code for it (reading CSV/TSV into records, records to DocBins, the training
config, threshold tuning), so that the benchmarks measure what a user gets.
The anchors (TF-IDF floor, the plain transformers recipe, stock spaCy
``textcat_multilabel``) are written out here in full, so that what they do is
visible in one place.
"""
import gc
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy

from spacy_mlbert.data import Record, read_records, records_to_docbin

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENCODER = REPO_ROOT / "encoders" / "multilingual-e5-small"
PROJECT_CONFIG = REPO_ROOT / "configs" / "mlbert_e5_small.cfg"
SEED = 0


# --- data ---------------------------------------------------------------------


@dataclass
class BenchData:
    """The texts of one benchmark run, shared by every system.

    labels (List[str]): The joint label set (sorted), the columns of every matrix.
    train (List[Record]): Training texts of all training languages.
    eval (List[Record]): Evaluation texts (dev) of all scored languages.
    lang_labels (Dict[str, List[str]]): Per language, the label columns its
        file has: the only labels it is scored on.
    train_langs (List[str]): Languages trained on, in the order given.
    zero_shot_langs (List[str]): Languages only scored, never trained on.
    """

    labels: List[str]
    train: List[Record]
    eval: List[Record]
    lang_labels: Dict[str, List[str]]
    train_langs: List[str]
    zero_shot_langs: List[str] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): Text counts per language and split, labels."""
        return {
            "labels": list(self.labels),
            "lang_labels": {lang: list(v) for lang, v in self.lang_labels.items()},
            "train_texts": _count_langs(self.train),
            "eval_texts": _count_langs(self.eval),
            "train_langs": list(self.train_langs),
            "zero_shot_langs": list(self.zero_shot_langs),
        }


def _count_langs(records: Iterable[Record]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for record in records:
        counts[record.lang] = counts.get(record.lang, 0) + 1
    return counts


def first_n_shuffled(records: Sequence[Record], n: int, seed: int = SEED) -> List[Record]:
    """The first ``n`` records after a seeded shuffle of the file (n <= 0: all).

    The shuffle is over the whole file, so the sample does not depend on how
    the file happens to be ordered (BRIGHTER files are not in random order).
    """
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    chosen = order if n <= 0 else order[:n]
    return [records[i] for i in chosen]


def _file_labels(records: Sequence[Record]) -> List[str]:
    """The labels known for at least one record: a CSV file's label columns."""
    seen: Dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record.cats))
    return list(seen)


def load_semeval(
    train_dir: Path,
    eval_dir: Path,
    langs: Sequence[str],
    n: int,
    *,
    zero_shot_langs: Sequence[str] = (),
    eval_n: int = 0,
    seed: int = SEED,
) -> BenchData:
    """Read SemEval-2025 Task 11 track A CSVs (``<lang>.csv``) of each language.

    Each file is read on its own through the project's reader, so a label
    column that a language lacks (eng has no ``disgust``) stays unknown for
    that language's texts, exactly as ``spacy-mlbert convert`` leaves it.

    train_dir (Path): Folder of training CSVs.
    eval_dir (Path): Folder of evaluation (dev) CSVs.
    langs (Sequence[str]): Languages to train on and score.
    n (int): Training texts per language (first n after a seeded shuffle).
    zero_shot_langs (Sequence[str]): Languages only scored.
    eval_n (int): Evaluation texts per language (0: all).
    seed (int): Shuffle seed.
    RETURNS (BenchData): The texts.
    """
    train: List[Record] = []
    evaluation: List[Record] = []
    lang_labels: Dict[str, List[str]] = {}
    for lang in list(langs) + list(zero_shot_langs):
        if lang in langs:
            records, _ = read_records(Path(train_dir) / f"{lang}.csv", fmt="semeval")
            train.extend(first_n_shuffled(records, n, seed))
        records, _ = read_records(Path(eval_dir) / f"{lang}.csv", fmt="semeval")
        lang_labels[lang] = _file_labels(records)
        evaluation.extend(first_n_shuffled(records, eval_n, seed) if eval_n else records)
    labels = sorted({label for values in lang_labels.values() for label in values})
    labels = sorted(set(labels) | set(_file_labels(train)))
    return BenchData(labels, train, evaluation, lang_labels, list(langs), list(zero_shot_langs))


def load_goemotions(
    data_dir: Path, n: int, *, eval_n: int = 0, seed: int = SEED, lang: str = "en"
) -> BenchData:
    """Read GoEmotions (train.tsv, dev.tsv, labels.txt in ``data_dir``): English, 28 labels.

    data_dir (Path): The folder.
    n (int): Training texts (first n after a seeded shuffle; 0: all).
    eval_n (int): Evaluation texts (0: all 5,426).
    seed (int): Shuffle seed.
    lang (str): The language code given to the texts.
    RETURNS (BenchData): The texts.
    """
    data_dir = Path(data_dir)
    label_file = data_dir / "labels.txt"
    kwargs = dict(fmt="goemotions", goemotions_labels=label_file, lang=lang)
    train, report = read_records(data_dir / "train.tsv", **kwargs)
    labels = list(report.labels)
    evaluation, _ = read_records(data_dir / "dev.tsv", label_set=labels, **kwargs)
    train = first_n_shuffled(train, n, seed)
    evaluation = first_n_shuffled(evaluation, eval_n, seed) if eval_n else evaluation
    return BenchData(labels, train, evaluation, {lang: labels}, [lang])


def label_arrays(records: Sequence[Record], labels: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Gold 0/1 values (0 where unknown) and the known-mask, each (n, n_labels)."""
    y = numpy.zeros((len(records), len(labels)), dtype="f")
    known = numpy.zeros((len(records), len(labels)), dtype=bool)
    for i, record in enumerate(records):
        for j, label in enumerate(labels):
            if label in record.cats:
                y[i, j] = record.cats[label]
                known[i, j] = True
    return y, known


def split_holdout(records: Sequence[Record], labels: Sequence[str], share: float = 0.1, seed: int = SEED):
    """Split off ``share`` of the training texts for model selection and thresholds.

    The project's stratified splitter (over labels and languages) is used, so
    every language and label is represented in the held-out slice.
    RETURNS (Tuple[List[Record], List[Record]]): (fit, holdout).
    """
    from spacy_mlbert.data import split_records

    splits, removed = split_records(records, (1.0 - share, share), seed=seed, labels=labels)
    return splits["train"], splits["dev"], removed


def write_docbin(records: Sequence[Record], labels: Sequence[str], path: Path) -> Path:
    """Records -> .spacy through the project's converter (unknown labels left out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    records_to_docbin(records, "xx", labels=labels).to_disk(path)
    return path


# --- scoring ------------------------------------------------------------------


def official_scores(
    y_true: numpy.ndarray,
    y_pred: numpy.ndarray,
    langs: Sequence[str],
    labels: Sequence[str],
    lang_labels: Mapping[str, Sequence[str]],
) -> Dict[str, Dict[str, Any]]:
    """The SemEval-2025 Task 11 metric per language: scikit-learn f1_score,
    macro and micro, over that language's label columns only.

    y_true (numpy.ndarray): (n, n_labels) gold 0/1 values.
    y_pred (numpy.ndarray): (n, n_labels) 0/1 decisions.
    langs (Sequence[str]): The language of each row.
    labels (Sequence[str]): Column names.
    lang_labels (Mapping[str, Sequence[str]]): The columns each language is scored on.
    RETURNS (Dict[str, Dict[str, Any]]): {lang: {macro_f, micro_f, n_docs, labels}}.
    """
    from sklearn.metrics import f1_score

    langs_arr = numpy.asarray(langs, dtype=object)
    scores: Dict[str, Dict[str, Any]] = {}
    for lang, columns in lang_labels.items():
        rows = langs_arr == lang
        if not rows.any():
            continue
        cols = [labels.index(label) for label in columns]
        gold = y_true[rows][:, cols].astype(int)
        pred = y_pred[rows][:, cols].astype(int)
        scores[lang] = {
            # zero_division=0 as the official script (sklearn's default warns and gives 0)
            "macro_f": float(f1_score(gold, pred, average="macro", zero_division=0)),
            "micro_f": float(f1_score(gold, pred, average="micro", zero_division=0)),
            "n_docs": int(rows.sum()),
            "labels": list(columns),
        }
    return scores


def averages(per_lang: Mapping[str, Mapping[str, Any]], langs: Sequence[str]) -> Dict[str, Optional[float]]:
    """Unweighted means over ``langs`` (each language counts once, as in the task)."""
    present = [lang for lang in langs if lang in per_lang]
    if not present:
        return {"macro_f": None, "micro_f": None}
    return {
        key: float(numpy.mean([per_lang[lang][key] for lang in present]))
        for key in ("macro_f", "micro_f")
    }


def paired_bootstrap(
    y_true: numpy.ndarray,
    pred_a: numpy.ndarray,
    pred_b: numpy.ndarray,
    langs: Sequence[str],
    labels: Sequence[str],
    lang_labels: Mapping[str, Sequence[str]],
    average_langs: Sequence[str],
    *,
    resamples: int = 1000,
    seed: int = SEED,
) -> Dict[str, float]:
    """How sure is "A's average macro-F1 beats B's"? Both systems' decisions on
    the same texts are resampled together (texts drawn with replacement within
    each language, so every language keeps its size), and the difference of
    the averages over ``average_langs`` is recomputed each time.

    RETURNS (Dict[str, float]): difference on the data as given, the 2.5 % and
        97.5 % percentiles of the resampled differences, their standard
        deviation, and the share of resamples in which A is not ahead.
    """
    langs_arr = numpy.asarray(langs, dtype=object)
    rows_by_lang = [numpy.flatnonzero(langs_arr == lang) for lang in average_langs]
    rng = numpy.random.RandomState(seed)

    def difference(rows: numpy.ndarray) -> float:
        sub_langs = langs_arr[rows]
        a = averages(official_scores(y_true[rows], pred_a[rows], sub_langs, labels, lang_labels), average_langs)
        b = averages(official_scores(y_true[rows], pred_b[rows], sub_langs, labels, lang_labels), average_langs)
        return a["macro_f"] - b["macro_f"]

    observed = difference(numpy.concatenate(rows_by_lang))
    diffs = numpy.asarray([
        difference(numpy.concatenate([rng.choice(rows, size=rows.size, replace=True) for rows in rows_by_lang]))
        for _ in range(resamples)
    ])
    return {
        "difference": observed,
        "low_2.5": float(numpy.percentile(diffs, 2.5)),
        "high_97.5": float(numpy.percentile(diffs, 97.5)),
        "sd": float(diffs.std(ddof=1)),
        "share_not_ahead": float(numpy.mean(diffs <= 0)),
        "resamples": resamples,
    }


# --- TF-IDF floor -------------------------------------------------------------


def tfidf_floor(data: BenchData) -> Tuple[numpy.ndarray, float, float]:
    """Character 1-4-gram TF-IDF + one-vs-rest logistic regression, one model per
    language on that language's training texts and label columns.

    RETURNS (Tuple[ndarray, float, float]): 0/1 decisions on data.eval
        (columns of data.labels; zero-shot languages and labels a language
        lacks stay 0, they are not scored), training and prediction seconds.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    import warnings

    pred = numpy.zeros((len(data.eval), len(data.labels)), dtype="f")
    train_seconds = predict_seconds = 0.0
    for lang in data.train_langs:
        columns = data.lang_labels[lang]
        cols = [data.labels.index(label) for label in columns]
        train = [r for r in data.train if r.lang == lang]
        rows = [i for i, r in enumerate(data.eval) if r.lang == lang]
        y, _ = label_arrays(train, data.labels)
        start = time.perf_counter()
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 4))
        X = vectorizer.fit_transform([r.text for r in train])
        classifier = OneVsRestClassifier(LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            # a label with no positive among few texts: sklearn predicts the constant
            warnings.simplefilter("ignore", UserWarning)
            classifier.fit(X, y[:, cols].astype(int))
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        decided = classifier.predict(vectorizer.transform([data.eval[i].text for i in rows]))
        predict_seconds += time.perf_counter() - start
        pred[numpy.ix_(rows, cols)] = numpy.asarray(decided)
    return pred, train_seconds, predict_seconds


# --- the plain transformers + PyTorch recipe ----------------------------------


def load_hf(encoder: Path):
    """The Hugging Face tokenizer and encoder (offline: local folder only)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder), use_fast=True, local_files_only=True)
    model = AutoModel.from_pretrained(str(encoder), local_files_only=True)
    return tokenizer, model


def make_head_module(encoder_model, n_labels: int, *, pooling: str = "cls", dropout: float = 0.1):
    """Encoder -> pooled vector ("cls": first token, "mean": masked mean) -> dropout -> linear."""
    import torch

    class PooledClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder_model
            self.dropout = torch.nn.Dropout(dropout)
            self.linear = torch.nn.Linear(encoder_model.config.hidden_size, n_labels)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                vector = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vector = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.linear(self.dropout(vector))

    return PooledClassifier()


def train_torch(
    texts: Sequence[str],
    y: numpy.ndarray,
    encoder: Path,
    *,
    epochs: int = 3,
    batch_size: int = 16,
    lr: float = 5e-5,
    max_length: int = 128,
    pooling: str = "cls",
    freeze_embeddings: bool = False,
    grad_clip: Optional[float] = None,
    weight_decay: float = 0.01,
    known: Optional[numpy.ndarray] = None,
    seed: int = SEED,
    epoch_seconds: Optional[List[float]] = None,
    epoch_cpu_seconds: Optional[List[float]] = None,
    epoch_ends: Optional[List[float]] = None,
):
    """Fine-tune encoder + head with BCEWithLogitsLoss and AdamW.

    With the defaults this is the plain recipe of the issue: first-token vector,
    dropout 0.1, linear; AdamW lr 5e-5 (torch's default weight decay 0.01), 3
    epochs, batch 16, max length 128, no schedule, every weight trained. A
    label the text's file lacks counts as 0 (the recipe has no notion of
    unknown) unless ``known`` is given, which masks it out of the loss.

    epoch_seconds (Optional[List[float]]): If given, each epoch's seconds are appended.
    epoch_cpu_seconds (Optional[List[float]]): Likewise, process CPU seconds.
    epoch_ends (Optional[List[float]]): If given, the first epoch's start and
        every epoch's end are appended (time.perf_counter).
    RETURNS (Tuple[module, tokenizer, float]): The model, its tokenizer and
        the training seconds (loading the encoder included).
    """
    import torch

    start = time.perf_counter()
    torch.manual_seed(seed)
    tokenizer, encoder_model = load_hf(encoder)
    model = make_head_module(encoder_model, y.shape[1], pooling=pooling)
    if freeze_embeddings:
        encoder_model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    targets = torch.as_tensor(y, dtype=torch.float32)
    weights = torch.as_tensor(known, dtype=torch.float32) if known is not None else None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    if epoch_ends is not None:
        epoch_ends.append(time.perf_counter())
    for _ in range(epochs):
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        order = torch.randperm(len(texts), generator=generator).tolist()
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            inputs = tokenizer(
                [texts[j] for j in batch],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(inputs["input_ids"], inputs["attention_mask"])
            losses = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, targets[batch], reduction="none"
            )
            if weights is None:
                loss = losses.mean()
            else:
                mask = weights[batch]
                loss = (losses * mask).sum() / mask.sum().clamp(min=1.0)
            optimizer.zero_grad()
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
        if epoch_seconds is not None:
            epoch_seconds.append(time.perf_counter() - epoch_start)
        if epoch_cpu_seconds is not None:
            epoch_cpu_seconds.append(time.process_time() - epoch_cpu)
        if epoch_ends is not None:
            epoch_ends.append(time.perf_counter())
    model.eval()
    return model, tokenizer, time.perf_counter() - start


def predict_torch(model, tokenizer, texts: Sequence[str], *, batch_size: int = 64, max_length: int = 128) -> numpy.ndarray:
    """Sigmoid probabilities, (n, n_labels): tokenise + encoder + head, no gradients."""
    import torch

    rows = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            inputs = tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(inputs["input_ids"], inputs["attention_mask"])
            rows.append(torch.sigmoid(logits).numpy())
    return numpy.concatenate(rows) if rows else numpy.zeros((0, 0), dtype="f")


# --- spaCy pipelines ----------------------------------------------------------


def load_project_config(path: Path = PROJECT_CONFIG):
    """The project's training config, uninterpolated (``${paths.*}`` kept)."""
    from spacy import util

    return util.load_config(path, interpolate=False)


def set_dotted(config, key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested config dict; a None value may replace a section
    (e.g. ``initialize.after_init`` = null to train the word embeddings too)."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``key=value`` strings (values as JSON where they parse, else strings)."""
    overrides: Dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"Expected key=value, got '{item}'")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def stock_config(project_config):
    """The project's config with ``mlbert_textcat`` swapped for stock spaCy
    ``textcat_multilabel``, as ``spacy init config -p textcat_multilabel -G
    --optimize accuracy`` writes it for a transformer: spacy.TextCatEnsemble.v2
    (spacy-transformers TransformerListener.v1 with reduce_mean pooling, plus
    the bag-of-words spacy.TextCatBOW.v3). Squared-error loss on probabilities,
    one threshold (0.5). The transformer component (the project's
    TransformerModel.v1 is spacy-transformers' v3 with clearer errors, and it
    attaches the project's wordpiece span getters), the tokenizer, the
    batcher, the optimizer and the frozen word embeddings stay as in the
    project's config, so the component is the only difference.
    """
    config = project_config.copy()
    del config["components"]["mlbert_textcat"]
    config["nlp"]["pipeline"] = ["transformer", "textcat_multilabel"]
    config["components"]["textcat_multilabel"] = {
        "factory": "textcat_multilabel",
        "threshold": 0.5,
        "scorer": {"@scorers": "spacy.textcat_multilabel_scorer.v2"},
        "model": {
            "@architectures": "spacy.TextCatEnsemble.v2",
            "nO": None,
            "tok2vec": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "upstream": "transformer",
                "pooling": {"@layers": "reduce_mean.v1"},
            },
            "linear_model": {
                "@architectures": "spacy.TextCatBOW.v3",
                "exclusive_classes": False,
                "length": 262144,
                "ngram_size": 1,
                "no_output_layer": False,
            },
        },
    }
    for name in ("train", "dev"):
        config["corpora"][name] = {
            "@readers": "spacy.Corpus.v1",
            "path": "${paths.%s}" % name,
            "max_length": 0,
            "gold_preproc": False,
            "limit": 0,
            "augmenter": None,
        }
    return config


def training_overrides(
    train_path: Path,
    dev_path: Path,
    encoder: Path,
    n_train: int,
    epochs: int,
    batch_size: int = 16,
    selection: str = "epoch-end",
) -> Dict[str, Any]:
    """Paths, epochs, and a schedule sized to the run: the linear decay ends at
    the last step (the config's fixed 100 steps would stop learning early on
    larger runs), and the held-out slice is scored once per epoch.

    spaCy scores when ``step % eval_frequency == 0``, counting steps from 0:
    with eval_frequency = steps per epoch that is after the *first* batch of
    each epoch, so the last epoch's updates would never be scored (nor be
    model-best). selection "epoch-end" therefore runs ``epochs * steps``
    steps plus one (max_steps) and scores at every multiple of the epoch
    length, the last step included. "legacy" is the first behaviour (kept to
    reproduce the runs made with it).
    """
    steps_per_epoch = max(1, -(-n_train // batch_size))
    total = steps_per_epoch * epochs
    overrides = {
        "paths.train": str(train_path),
        "paths.dev": str(dev_path),
        "paths.encoder": str(encoder),
        "training.max_epochs": epochs,
        "training.eval_frequency": steps_per_epoch,
        "training.optimizer.learn_rate.total_steps": total,
        "training.optimizer.learn_rate.warmup_steps": min(10, steps_per_epoch),
    }
    if selection == "epoch-end":
        overrides["training.max_epochs"] = epochs + 1
        overrides["training.max_steps"] = total
    elif selection != "legacy":
        raise ValueError(f"selection: 'epoch-end' or 'legacy', not '{selection}'")
    return overrides


def spacy_train(config, work_dir: Path, name: str, overrides: Mapping[str, Any]) -> Tuple[Path, float]:
    """Write ``config`` and run ``spacy train`` on it (in this process).

    RETURNS (Tuple[Path, float]): The model-best folder and the wall seconds of
        the whole ``spacy train`` call (initialisation, per-epoch evaluation on
        the held-out slice and saving included, as a user would wait for it).
    """
    from spacy.cli.train import train

    config_path = work_dir / f"{name}.cfg"
    config.to_disk(config_path)
    output = work_dir / name
    start = time.perf_counter()
    train(config_path, output, use_gpu=-1, overrides=dict(overrides))
    return output / "model-best", time.perf_counter() - start


def pipe_probs(nlp, texts: Sequence[str], labels: Sequence[str], *, batch_size: int = 64) -> numpy.ndarray:
    """doc.cats of every text as an (n, n_labels) array in ``labels`` order."""
    probs = numpy.zeros((len(texts), len(labels)), dtype="f")
    for i, doc in enumerate(nlp.pipe(texts, batch_size=batch_size)):
        for j, label in enumerate(labels):
            probs[i, j] = doc.cats.get(label, 0.0)
    return probs


def free_memory() -> None:
    """Drop unreachable pipelines before the next system loads its own."""
    gc.collect()


# --- provenance ---------------------------------------------------------------


def versions() -> Dict[str, str]:
    """Versions of the packages that decide the numbers."""
    found = {"python": platform.python_version()}
    for name in (
        "spacy",
        "spacy-transformers",
        "thinc",
        "transformers",
        "torch",
        "tokenizers",
        "scikit-learn",
        "numpy",
        "spacy-mlbert",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_state() -> Dict[str, Any]:
    """The commit of the checkout and the files that differ from it: several
    people edit this tree at once, so a run says which code it ran."""
    import subprocess

    def git(*args: str) -> str:
        try:
            # keep leading spaces: porcelain lines start with a two-letter status
            return subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
            ).stdout.rstrip("\n")
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "modified": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
    }


def machine() -> Dict[str, Any]:
    """The machine and how busy it was (the CPUs are shared with other work)."""
    import torch

    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.is_available(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line() -> str:
    return " ".join([Path(sys.executable).name] + sys.argv)


def log(message: str) -> None:
    """Progress lines on stderr, flushed at once (runs are logged to files)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
