"""Shared parts of the benchmark scripts: data, anchors, spaCy training, scoring.

Everything here goes through the project's own code where the project has
code for it (reading CSV/TSV into records, records to DocBins, the training
config, threshold tuning), so that the benchmarks measure what a user gets.
The anchors (the TF-IDF anchor, the plain transformers recipe, stock spaCy
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
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

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
    pred_a: Union[numpy.ndarray, Sequence[numpy.ndarray]],
    pred_b: Union[numpy.ndarray, Sequence[numpy.ndarray]],
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
    the averages over ``average_langs`` is recomputed each time. Given lists
    of decisions (runs of A and B with several training seeds, index i of one
    paired with index i of the other), the difference is the mean over the
    pairs, and all runs are resampled with the same texts: the interval then
    covers the texts' sampling, while the seeds' spread is averaged over.

    RETURNS (Dict[str, float]): difference on the data as given, the 2.5 % and
        97.5 % percentiles of the resampled differences, their standard
        deviation, and the share of resamples in which A is not ahead.
    """
    langs_arr = numpy.asarray(langs, dtype=object)
    rows_by_lang = [numpy.flatnonzero(langs_arr == lang) for lang in average_langs]
    rng = numpy.random.RandomState(seed)

    runs_a = [pred_a] if isinstance(pred_a, numpy.ndarray) else list(pred_a)
    runs_b = [pred_b] if isinstance(pred_b, numpy.ndarray) else list(pred_b)
    if len(runs_a) != len(runs_b):
        raise ValueError(f"{len(runs_a)} runs of A, {len(runs_b)} of B: pairs are needed")

    def macro_f(pred: numpy.ndarray, rows: numpy.ndarray) -> float:
        scores = official_scores(y_true[rows], pred[rows], langs_arr[rows], labels, lang_labels)
        return averages(scores, average_langs)["macro_f"]

    def difference(rows: numpy.ndarray) -> float:
        return float(numpy.mean([macro_f(a, rows) - macro_f(b, rows) for a, b in zip(runs_a, runs_b)]))

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


# --- TF-IDF anchor -------------------------------------------------------------

# The grids the anchor chooses from on the training holdout slice.
TFIDF_C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
TFIDF_NGRAMS = ((1, 4), (2, 5))
TFIDF_MODES = ("holdout", "per-language", "joint")


@dataclass
class TfidfModel:
    """One fitted TF-IDF anchor model: a vectorizer and, per label column,
    a logistic regression (or the constant probability of a label whose
    training cells are all one value)."""

    vectorizer: Any
    classifiers: List[Any]

    def probs(self, texts: Sequence[str]) -> numpy.ndarray:
        """RETURNS (numpy.ndarray): (len(texts), n_labels) probabilities."""
        X = self.vectorizer.transform(list(texts))
        out = numpy.zeros((len(texts), len(self.classifiers)), dtype="f")
        for j, classifier in enumerate(self.classifiers):
            out[:, j] = classifier if isinstance(classifier, float) else classifier.predict_proba(X)[:, 1]
        return out


def fit_tfidf(
    texts: Sequence[str],
    y: numpy.ndarray,
    known: numpy.ndarray,
    *,
    ngram_range: Tuple[int, int],
    C: float,
) -> TfidfModel:
    """Character n-gram TF-IDF (``char_wb``, sublinear tf) and one-vs-rest
    logistic regression with ``class_weight="balanced"``: one binary model per
    label column, trained on the texts where that label is annotated (so a
    joint model over languages with different label columns leaves the
    unknown cells out, as mlbert's masked loss does).

    texts (Sequence[str]): Training texts.
    y (numpy.ndarray): (n, n_labels) gold 0/1 values.
    known (numpy.ndarray): (n, n_labels) True where annotated.
    ngram_range (Tuple[int, int]): Character n-gram lengths.
    C (float): Inverse regularisation strength.
    RETURNS (TfidfModel): The fitted model.
    """
    vectorizer, X = _tfidf_vectorize(texts, ngram_range)
    return TfidfModel(vectorizer, _tfidf_classifiers(X, y, known, C))


def _tfidf_vectorize(texts: Sequence[str], ngram_range: Tuple[int, int]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(ngram_range), sublinear_tf=True)
    return vectorizer, vectorizer.fit_transform(list(texts))


def _tfidf_classifiers(X, y: numpy.ndarray, known: numpy.ndarray, C: float) -> List[Any]:
    import warnings

    from sklearn.linear_model import LogisticRegression

    classifiers: List[Any] = []
    for j in range(y.shape[1]):
        rows = numpy.flatnonzero(known[:, j])
        target = y[rows, j].astype(int)
        if rows.size == 0 or target.min() == target.max():
            # nothing to separate: the label's constant rate (0 if never annotated)
            classifiers.append(float(target[0]) if rows.size else 0.0)
            continue
        # the dual problem: far faster with many more n-grams than texts, same optimum
        classifier = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear convergence notes on tiny data
            classifier.fit(X[rows], target)
        classifiers.append(classifier)
    return classifiers


def _holdout_macro_f(
    y: numpy.ndarray, pred: numpy.ndarray, langs: Sequence[str], labels: Sequence[str],
    lang_labels: Mapping[str, Sequence[str]], average_langs: Sequence[str],
) -> Optional[float]:
    scores = official_scores(y, pred, langs, labels, {k: lang_labels[k] for k in average_langs if k in lang_labels})
    return averages(scores, average_langs)["macro_f"]


def tfidf_anchor(
    data: BenchData,
    fit: Sequence[Record],
    holdout: Sequence[Record],
    *,
    tune_method: str,
    mode: str = "holdout",
    c_grid: Sequence[float] = TFIDF_C_GRID,
    ngram_grid: Sequence[Tuple[int, int]] = TFIDF_NGRAMS,
) -> Tuple[numpy.ndarray, numpy.ndarray, float, float, Dict[str, Any]]:
    """The TF-IDF anchor at its strongest reasonable settings, chosen on the
    training holdout slice only (dev is never looked at).

    For each model (one per training language, or one joint model over all
    of them) every n-gram range of ``ngram_grid`` and C of ``c_grid`` is fitted
    on the ``fit`` texts (the 90 %) and scored on the ``holdout`` texts (the
    10 %) by macro-F1 at 0.5 (the balanced class weights centre the
    probabilities there); the best one (ties: the first in grid order, smaller
    n-grams and smaller C first) is kept. Its
    per-label thresholds are then tuned on its holdout probabilities with
    the project's tuner (``tune_method``, as for mlbert).

    The kept model is the one fitted on the 90 %, not a refit on all N: the
    thresholds are tuned for that model's probabilities on texts it did not
    see, which a refit on all N (holdout included) would no longer be; mlbert
    and stock also train on the 90 % and select on the 10 %.

    mode "holdout" fits both one model per language (the SemEval-2025 floor's
    convention) and one joint model, and keeps the one with the better average
    holdout macro-F1 over the training languages (at each one's chosen
    settings); "per-language" or "joint" forces one. One training language:
    per-language. A per-language model has no prediction in zero-shot
    languages; a joint model predicts them too.

    RETURNS (Tuple[ndarray, ndarray, float, float, Dict]): 0/1 decisions and
        probabilities on data.eval (columns of data.labels; cells no model
        predicts are 0), training seconds (every candidate fit, the tuning
        included), prediction seconds, and what was chosen.
    """
    from spacy_mlbert.tuning.thresholds import tune_thresholds

    if mode not in TFIDF_MODES:
        raise ValueError(f"mode: one of {TFIDF_MODES}, not '{mode}'")
    labels = list(data.labels)
    start = time.perf_counter()
    fit_y, fit_known = label_arrays(fit, labels)
    hold_y, hold_known = label_arrays(holdout, labels)
    fit_langs = numpy.asarray([r.lang for r in fit], dtype=object)
    hold_langs = numpy.asarray([r.lang for r in holdout], dtype=object)
    # the models of each mode: (name, its training languages, its label columns)
    units = {
        "per-language": [(lang, [lang], list(data.lang_labels[lang])) for lang in data.train_langs],
        "joint": [("joint", list(data.train_langs), labels)],
    }
    if mode == "holdout":
        modes = ["per-language", "joint"] if len(data.train_langs) > 1 else ["per-language"]
    else:
        modes = [mode]
    chosen: Dict[str, Dict[str, Any]] = {}
    mode_scores: Dict[str, Optional[float]] = {}
    for name in modes:
        hold_pred = numpy.zeros_like(hold_y)
        for unit, langs, columns in units[name]:
            cols = [labels.index(label) for label in columns]
            fit_rows = numpy.flatnonzero(numpy.isin(fit_langs, langs))
            hold_rows = numpy.flatnonzero(numpy.isin(hold_langs, langs))
            best = None
            grid = []
            for ngram_range in ngram_grid:
                # one vocabulary per n-gram range (it does not depend on C)
                vectorizer, X = _tfidf_vectorize([fit[i].text for i in fit_rows], ngram_range)
                for C in sorted(c_grid):
                    model = TfidfModel(vectorizer, _tfidf_classifiers(
                        X, fit_y[numpy.ix_(fit_rows, cols)], fit_known[numpy.ix_(fit_rows, cols)], C
                    ))
                    probs = model.probs([holdout[i].text for i in hold_rows])
                    pred = numpy.zeros((hold_rows.size, len(labels)), dtype="f")
                    pred[:, cols] = probs >= 0.5
                    score = _holdout_macro_f(
                        hold_y[hold_rows], pred, hold_langs[hold_rows], labels, data.lang_labels, langs
                    ) if hold_rows.size else None
                    grid.append({"ngram_range": list(ngram_range), "C": C, "holdout_macro_f": score})
                    if best is None or (score is not None and (best[0] is None or score > best[0])):
                        best = (score, ngram_range, C, model, probs)
            score, ngram_range, C, model, probs = best
            hold_pred[numpy.ix_(hold_rows, cols)] = probs >= 0.5
            chosen.setdefault(name, {})[unit] = {
                "langs": langs, "labels": columns, "ngram_range": list(ngram_range), "C": C,
                "holdout_macro_f_at_0.5": score, "grid": grid, "_model": model, "_hold_probs": probs,
                "_hold_rows": hold_rows, "_cols": cols,
            }
        mode_scores[name] = _holdout_macro_f(hold_y, hold_pred, hold_langs, labels, data.lang_labels, data.train_langs)
    picked = max(modes, key=lambda m: (mode_scores[m] if mode_scores[m] is not None else -1.0, m == "per-language"))
    thresholds: Dict[str, Dict[str, float]] = {}
    for unit, info in chosen[picked].items():
        rows, cols = info["_hold_rows"], info["_cols"]
        unit_labels = [labels[j] for j in cols]
        thresholds[unit] = tune_thresholds(
            hold_y[numpy.ix_(rows, cols)], info["_hold_probs"], hold_known[numpy.ix_(rows, cols)],
            unit_labels, method=tune_method,
        )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    eval_langs = numpy.asarray([r.lang for r in data.eval], dtype=object)
    probs_out = numpy.zeros((len(data.eval), len(labels)), dtype="f")
    pred_out = numpy.zeros_like(probs_out)
    for unit, info in chosen[picked].items():
        # a joint model also predicts the zero-shot languages
        langs = info["langs"] if picked == "per-language" else list(data.train_langs) + list(data.zero_shot_langs)
        rows = numpy.flatnonzero(numpy.isin(eval_langs, langs))
        cols = info["_cols"]
        probs = info["_model"].probs([data.eval[i].text for i in rows])
        cuts = numpy.asarray([thresholds[unit][labels[j]] for j in cols], dtype="f")
        probs_out[numpy.ix_(rows, cols)] = probs
        pred_out[numpy.ix_(rows, cols)] = probs >= cuts[None, :]
    predict_seconds = time.perf_counter() - start
    report = {
        "mode": picked,
        "mode_requested": mode,
        "holdout_macro_f_by_mode": mode_scores,
        "models": {
            unit: {k: v for k, v in info.items() if not k.startswith("_")}
            for unit, info in chosen[picked].items()
        },
        "thresholds": thresholds,
        "tune_method": tune_method,
        "fitted_on": "the fit slice (90 %): thresholds are tuned on its holdout probabilities",
        "c_grid": list(c_grid),
        "ngram_grid": [list(g) for g in ngram_grid],
    }
    if len(modes) > 1:
        report["other_modes"] = {
            name: {unit: {"ngram_range": info["ngram_range"], "C": info["C"], "holdout_macro_f_at_0.5": info["holdout_macro_f_at_0.5"]} for unit, info in chosen[name].items()}
            for name in modes if name != picked
        }
    return pred_out, probs_out, train_seconds, predict_seconds, report


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
    train_seed: Optional[int] = None,
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
    if train_seed is not None:
        # the data stay the same; only what the seed draws in training changes
        # (initial weights, dropout, batch order)
        overrides["system.seed"] = train_seed
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


# --- timings over reruns ---------------------------------------------------------


def rerun_timings(runs: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Training seconds of every system over several runs (reruns of the same
    settings): per system, the median and every rerun, so that no single
    lucky pair stands for the ratio.

    A system scored from a model another run trained (``--mlbert-model``:
    ``settings.trained_model`` set) did not train in that run and is left out.

    runs (Sequence[Mapping[str, Any]]): quality.py results dicts, each with
        ``_path`` (where it was read from).
    RETURNS (Dict[str, Dict[str, Any]]): {system: {median_train_seconds,
        median_cpu_seconds (None where a run lacks them), n_runs, reruns:
        [{path, date, train_seconds, cpu_seconds, load_average_before}]}},
        systems in the order first seen.
    """
    table: Dict[str, Dict[str, Any]] = {}
    for run in runs:
        for name, result in run.get("systems", {}).items():
            if result.get("settings", {}).get("trained_model"):
                continue
            entry = table.setdefault(name, {"reruns": []})
            entry["reruns"].append({
                "path": run.get("_path"),
                "date": run.get("date"),
                "train_seconds": result["train_seconds"],
                "cpu_seconds": result.get("cpu_seconds_whole_system"),
                "load_average_before": result.get("load_average_before"),
            })
    for entry in table.values():
        seconds = [r["train_seconds"] for r in entry["reruns"]]
        cpu = [r["cpu_seconds"] for r in entry["reruns"]]
        entry["median_train_seconds"] = float(numpy.median(seconds))
        entry["median_cpu_seconds"] = float(numpy.median(cpu)) if all(c is not None for c in cpu) else None
        entry["n_runs"] = len(seconds)
    return table


def timings_markdown(table: Mapping[str, Mapping[str, Any]], reference: str = "stock") -> str:
    """The medians (and their ratio to ``reference``'s median), then every rerun."""
    ref = table.get(reference, {}).get("median_train_seconds")
    lines = [
        f"| system | runs | median training s | median CPU s | / {reference} (medians) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entry in table.items():
        cpu = entry["median_cpu_seconds"]
        ratio = f"{entry['median_train_seconds'] / ref:.2f}" if ref else "-"
        lines.append(
            f"| {name} | {entry['n_runs']} | {entry['median_train_seconds']:.0f} | "
            f"{'-' if cpu is None else f'{cpu:.0f}'} | {ratio} |"
        )
    lines += ["", "| system | run | date | training s | CPU s | load (1 min) before |", "|---|---|---|---:|---:|---:|"]
    for name, entry in table.items():
        for r in entry["reruns"]:
            load = r["load_average_before"][0] if r["load_average_before"] else None
            cpu = "-" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.0f}"
            load_cell = "-" if load is None else f"{load:.1f}"
            lines.append(
                f"| {name} | {r['path']} | {r['date'] or '-'} | {r['train_seconds']:.0f} | {cpu} | {load_cell} |"
            )
    return "\n".join(lines) + "\n"


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


SIZE_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse_size(text: str) -> int:
    """RETURNS (int): bytes of "100MB", "1GB", "64KB" or a plain number."""
    text = text.strip().upper()
    for unit, factor in SIZE_UNITS.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def log(message: str) -> None:
    """Progress lines on stderr, flushed at once (runs are logged to files)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
