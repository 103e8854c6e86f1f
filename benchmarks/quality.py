"""Quality benchmark: mlbert_textcat against three anchors, side by side in one run.

One joint model is trained on every given language through the project's own
path (CSV -> records -> DocBin -> ``spacy train`` with the project's config ->
thresholds tuned on a held-out 10% of the training texts -> scored on dev).
On the same texts, in the same run, the anchors are trained and scored:

- ``tfidf``: character n-gram TF-IDF (char_wb, sublinear tf) + one-vs-rest
  logistic regression with balanced class weights, the n-gram range and C
  chosen on the held-out slice, per-label thresholds tuned there as mlbert's;
  one model per language (the convention of the SemEval-2025 Task 11 floor)
  unless one joint model scores better on the held-out slice;
- ``plain``: the plain transformers + PyTorch recipe on the same encoder
  (first-token vector, dropout 0.1, linear, BCEWithLogitsLoss, AdamW 5e-5,
  3 epochs, batch 16, max length 128, threshold 0.5);
- ``stock``: spaCy's own ``textcat_multilabel`` (spacy.TextCatEnsemble.v2 on
  a TransformerListener, as ``spacy init config`` writes it) over the same
  transformer, trained with the same config otherwise.

Every system sees the same N training texts per language. Systems that select
something (``mlbert``: checkpoint and thresholds; ``stock``: checkpoint, and
thresholds in its tuned column ``stock+tuning``; ``tfidf``: n-grams, C and
thresholds) train on 90% of them and select on the other 10%; ``plain``, which
selects nothing, trains on all N. Dev is only ever scored, never tuned on.

Scores are the task's official metric: per language, scikit-learn f1_score
(macro and micro) over the label columns that language's file has; a label a
language lacks (eng: disgust) is left out of its score and is unknown (masked)
when training ``mlbert`` and ``stock``.

    python benchmarks/quality.py --train-dir ../shared/data/brighter/train \
        --eval-dir ../shared/data/brighter/dev --langs eng,rus,chn,hin,arq \
        --n 600 --out benchmarks/results/brighter_n600_all_systems.json
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402
from benchlib import BenchData, log  # noqa: E402

from spacy_mlbert.tuning.thresholds import DEFAULT_METHOD, TUNING_METHODS  # noqa: E402

SYSTEMS = ("tfidf", "mlbert", "stock", "plain")
DESCRIPTIONS = {
    "tfidf": "char_wb n-gram TF-IDF (sublinear tf) + one-vs-rest logistic regression (class_weight balanced), n-gram range and C chosen on the held-out 10%, per-label thresholds tuned there (sklearn); one model per language unless a joint one scores better on the held-out 10%",
    "stock+tuning": "stock textcat_multilabel as trained for 'stock', with per-label thresholds tuned on the held-out 10% by mlbert's tuning method",
    "plain": "transformers + PyTorch: first-token vector -> dropout 0.1 -> linear, BCEWithLogitsLoss, AdamW lr 5e-5, batch 16, max length 128, all weights trained, threshold 0.5",
    "stock": "spaCy textcat_multilabel: spacy.TextCatEnsemble.v2 (TransformerListener.v1 + reduce_mean, TextCatBOW.v3), squared-error loss, threshold 0.5; project config otherwise",
    "mlbert": "mlbert_textcat through the project's config (configs/mlbert_e5_small.cfg), thresholds tuned per label on the held-out 10% of the training texts, after a per-label calibration (Platt scaling) fitted there",
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("semeval", "goemotions"), default="semeval")
    parser.add_argument("--train-dir", type=Path, help="SemEval: folder of <lang>.csv; GoEmotions: folder of train.tsv, dev.tsv, labels.txt")
    parser.add_argument("--eval-dir", type=Path, help="SemEval: folder of dev <lang>.csv (GoEmotions: defaults to --train-dir)")
    parser.add_argument("--langs", default="eng,rus,chn,hin,arq", help="Languages to train on and score (SemEval)")
    parser.add_argument("--zero-shot-langs", default="", help="Languages only scored, never trained on (SemEval)")
    parser.add_argument("--n", type=int, default=600, help="Training texts per language: the first N after a seed-0 shuffle (0: all)")
    parser.add_argument("--eval-n", type=int, default=0, help="Evaluation texts per language, first N after a seed-0 shuffle (0: all)")
    parser.add_argument("--encoder", type=Path, default=common.DEFAULT_ENCODER)
    parser.add_argument("--config", type=Path, default=common.PROJECT_CONFIG, help="The project's training config")
    parser.add_argument("--epochs", type=int, default=4, help="Epochs of the spaCy systems (mlbert, stock)")
    parser.add_argument("--selection", choices=("epoch-end", "legacy"), default="epoch-end", help="When spacy train scores the held-out slice: at the end of every epoch (the last step included), or 'legacy': after the first batch of every epoch (the last epoch's updates never scored), as the first runs did")
    parser.add_argument("--plain-epochs", type=int, default=3, help="Epochs of the plain recipe (the recipe says 3)")
    parser.add_argument("--holdout", type=float, default=0.1, help="Share of the training texts held out for model selection and thresholds")
    parser.add_argument("--tune-method", choices=TUNING_METHODS, default=DEFAULT_METHOD, help="Threshold tuning method for mlbert and stock's tuned row (default: the package's default)")
    parser.add_argument("--tfidf-mode", choices=common.TFIDF_MODES, default="holdout", help="TF-IDF anchor: one model per language, one joint model, or 'holdout': the one that scores better on the held-out slice")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"Subset of {','.join(SYSTEMS)}")
    parser.add_argument("--mlbert-set", action="append", default=[], metavar="KEY=VALUE", help="Config override for mlbert (repeatable), e.g. components.mlbert_textcat.pos_weight=\"auto\"; initialize.after_init=null trains the word embeddings")
    parser.add_argument("--mlbert-model", type=Path, help="Score this trained mlbert pipeline (e.g. a --keep-models one from a run with the same data settings) instead of training one: tunes its thresholds and scores it; training seconds are then 0")
    parser.add_argument("--mlbert-ensemble", default="", metavar="PATHS", help="Score the mean probabilities of these trained mlbert pipelines (comma-separated, e.g. the model-best of --keep-models runs with other system.seed values) instead of training: calibrated and tuned on the held-out slice like mlbert; training seconds are then 0")
    parser.add_argument("--mlbert-staged", default="", metavar="LANGS", help="Train mlbert by staged training instead: one phase per language of LANGS in this order (each handing its encoder on), then the joint phase the default trains (spacy_mlbert.training.staged)")
    parser.add_argument("--stage-epochs", type=int, default=2, help="Epochs of each language phase of --mlbert-staged")
    parser.add_argument("--mlbert-name", default="mlbert", help="Name of the mlbert system in the results (for experiments)")
    parser.add_argument("--batch-size", type=int, default=64, help="Texts per nlp.pipe / forward batch when predicting")
    parser.add_argument("--work-dir", type=Path, help="Where DocBins and models go (default: a temporary folder, deleted)")
    parser.add_argument("--keep-models", action="store_true", help="Keep trained pipelines in --work-dir")
    parser.add_argument("--seed", type=int, default=common.SEED, help="Seed of the data: the shuffle that picks the first N texts and the held-out split")
    parser.add_argument("--train-seed", type=int, help="system.seed of the spaCy systems (mlbert, stock) on the same data: reruns of one setting for seed spread (default: the config's)")
    parser.add_argument("--out", type=Path, default=Path("results.json"))
    args = parser.parse_args(argv)
    if args.train_dir is None:
        parser.error("--train-dir is required")
    if args.dataset == "semeval" and args.eval_dir is None:
        parser.error("--eval-dir is required for SemEval")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown or not systems:
        parser.error(f"--systems: unknown {unknown}; choose from {','.join(SYSTEMS)}")
    args.systems = [s for s in SYSTEMS if s in systems]
    args.langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()]
    args.zero_shot_langs = [lang.strip() for lang in args.zero_shot_langs.split(",") if lang.strip()]
    return args


def load_data(args: argparse.Namespace) -> BenchData:
    if args.dataset == "goemotions":
        return common.load_goemotions(args.train_dir, args.n, eval_n=args.eval_n, seed=args.seed)
    return common.load_semeval(
        args.train_dir,
        args.eval_dir,
        args.langs,
        args.n,
        zero_shot_langs=args.zero_shot_langs,
        eval_n=args.eval_n,
        seed=args.seed,
    )


def system_result(
    name: str,
    data: BenchData,
    y_true: numpy.ndarray,
    y_pred: numpy.ndarray,
    *,
    train_seconds: float,
    predict_seconds: float,
    load_before: Sequence[float],
    extra: Optional[Dict[str, Any]] = None,
    skip_langs: Sequence[str] = (),
) -> Dict[str, Any]:
    """Per-language official scores, averages over trained and zero-shot languages."""
    langs = [r.lang for r in data.eval]
    lang_labels = {k: v for k, v in data.lang_labels.items() if k not in skip_langs}
    per_lang = common.official_scores(y_true, y_pred, langs, data.labels, lang_labels)
    result = {
        "description": DESCRIPTIONS.get(name.split(":")[0], DESCRIPTIONS["mlbert"]),
        "per_language": per_lang,
        "average": common.averages(per_lang, data.train_langs),
        "zero_shot_average": common.averages(per_lang, data.zero_shot_langs),
        "train_seconds": round(train_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in _loadavg()],
        # one string of 0/1 per eval text (settings.eval_ids order): what
        # report.py --paired resamples to put an interval on a difference
        "predictions": ["".join("1" if v >= 0.5 else "0" for v in row) for row in y_pred],
    }
    result.update(extra or {})
    return result


def ece_result(data: BenchData, probs: numpy.ndarray, *, skip_langs: Sequence[str] = ()) -> Dict[str, Any]:
    """Expected calibration error of a system's probabilities on the eval
    texts: 15 equal-width bins over each label's annotated cells, per label
    and macro (spacy_mlbert.calibration); texts of ``skip_langs`` left out."""
    from spacy_mlbert.calibration import calibration_errors

    y, known = common.label_arrays(data.eval, data.labels)
    kept = numpy.asarray([r.lang not in skip_langs for r in data.eval], dtype=bool)
    return calibration_errors(y, probs, known & kept[:, None], data.labels)


def _loadavg() -> List[float]:
    import os

    return list(os.getloadavg())


def run_tfidf(data: BenchData, y_true: numpy.ndarray, fit, holdout, args: argparse.Namespace) -> Dict[str, Any]:
    load = _loadavg()
    pred, probs, train_s, predict_s, chosen = common.tfidf_anchor(
        data, fit, holdout, tune_method=args.tune_method, mode=args.tfidf_mode
    )
    # per-language models have no training text in a zero-shot language: no
    # prediction there; a joint model is scored there too
    skip = data.zero_shot_langs if chosen["mode"] == "per-language" else ()
    return system_result(
        "tfidf", data, y_true, pred, train_seconds=train_s, predict_seconds=predict_s,
        load_before=load, skip_langs=skip,
        extra={"settings": chosen, "ece": ece_result(data, probs, skip_langs=skip)},
    )


def run_plain(data: BenchData, y_true: numpy.ndarray, args: argparse.Namespace) -> Dict[str, Any]:
    load = _loadavg()
    y, _ = common.label_arrays(data.train, data.labels)
    model, tokenizer, train_s = common.train_torch(
        [r.text for r in data.train], y, args.encoder, epochs=args.plain_epochs, seed=args.seed
    )
    start = time.perf_counter()
    probs = common.predict_torch(model, tokenizer, [r.text for r in data.eval], batch_size=args.batch_size)
    predict_s = time.perf_counter() - start
    del model
    common.free_memory()
    return system_result(
        "plain", data, y_true, (probs >= 0.5).astype("f"), train_seconds=train_s,
        predict_seconds=predict_s, load_before=load,
        extra={"ece": ece_result(data, probs), "settings": {"epochs": args.plain_epochs, "batch_size": 16, "lr": 5e-5, "max_length": 128, "weight_decay": 0.01, "unknown_labels": "0 (the recipe has no masking)"}},
    )


def run_stock(data: BenchData, y_true: numpy.ndarray, paths: Dict[str, Path], args: argparse.Namespace, n_fit: int, project_config, holdout) -> Dict[str, Any]:
    """Stock textcat_multilabel at its own threshold (0.5); also, as an extra
    row, with thresholds tuned per label on the held-out slice by the
    project's tuner, so that the head and loss can be compared apart from the
    thresholds."""
    import spacy
    from spacy_mlbert.tuning.thresholds import tune_thresholds

    load = _loadavg()
    config = common.stock_config(project_config)
    overrides = common.training_overrides(paths["fit"], paths["holdout"], args.encoder, n_fit, args.epochs, selection=args.selection, train_seed=args.train_seed)
    model_dir, train_s = common.spacy_train(config, paths["work"], "stock", overrides)
    nlp = spacy.load(model_dir)
    start = time.perf_counter()
    probs = common.pipe_probs(nlp, [r.text for r in data.eval], data.labels, batch_size=args.batch_size)
    predict_s = time.perf_counter() - start
    threshold = nlp.get_pipe("textcat_multilabel").cfg["threshold"]
    holdout_probs = common.pipe_probs(nlp, [r.text for r in holdout], data.labels, batch_size=args.batch_size)
    holdout_true, holdout_known = common.label_arrays(holdout, data.labels)
    tuned = tune_thresholds(holdout_true, holdout_probs, holdout_known, data.labels, method=args.tune_method)
    del nlp
    common.free_memory()
    _cleanup(paths["work"] / "stock", args)
    cuts = numpy.asarray([tuned[label] for label in data.labels], dtype="f")
    with_tuned = system_result(
        "stock", data, y_true, (probs >= cuts[None, :]).astype("f"), train_seconds=train_s,
        predict_seconds=predict_s, load_before=load,
    )
    return system_result(
        "stock", data, y_true, (probs >= threshold).astype("f"), train_seconds=train_s,
        predict_seconds=predict_s, load_before=load,
        extra={
            "ece": ece_result(data, probs),
            "settings": {"overrides": overrides, "threshold": threshold, "architecture": "spacy.TextCatEnsemble.v2"},
            "with_tuned_thresholds": {
                "thresholds": tuned,
                "tune_method": args.tune_method,
                "per_language": with_tuned["per_language"],
                "average": with_tuned["average"],
                "zero_shot_average": with_tuned["zero_shot_average"],
                "predictions": with_tuned["predictions"],
            },
        },
    )


def run_mlbert(data: BenchData, y_true: numpy.ndarray, paths: Dict[str, Path], args: argparse.Namespace, n_fit: int, project_config) -> Dict[str, Any]:
    from spacy_mlbert.evaluation import find_textcat, load_pipeline
    from spacy_mlbert.tuning.thresholds import tune_pipeline

    load = _loadavg()
    config = project_config.copy()
    variant = common.parse_overrides(args.mlbert_set)
    for key, value in variant.items():
        common.set_dotted(config, key, value)
    overrides = common.training_overrides(paths["fit"], paths["holdout"], args.encoder, n_fit, args.epochs, selection=args.selection, train_seed=args.train_seed)
    name = args.mlbert_name
    if args.mlbert_model:
        model_dir, train_s = args.mlbert_model, 0.0
    elif args.mlbert_staged:
        model_dir, train_s = train_staged(config, paths, args, name)
    else:
        model_dir, train_s = common.spacy_train(config, paths["work"], name, overrides)
    start = time.perf_counter()
    tuned_dir = paths["work"] / f"{name}-tuned"
    tuning = tune_pipeline(model_dir, paths["holdout"], tuned_dir, batch_size=args.batch_size, method=args.tune_method)
    tune_s = time.perf_counter() - start
    nlp = load_pipeline(tuned_dir)
    _, textcat = find_textcat(nlp)
    start = time.perf_counter()
    probs = common.pipe_probs(nlp, [r.text for r in data.eval], data.labels, batch_size=args.batch_size)
    predict_s = time.perf_counter() - start
    tuned = dict(textcat.thresholds)
    thresholds = numpy.asarray([tuned.get(label, 0.5) for label in data.labels], dtype="f")
    del nlp, textcat
    common.free_memory()
    if not args.mlbert_model:
        _cleanup(paths["work"] / name, args)
    _cleanup(tuned_dir, args)
    # the same probabilities at the default 0.5: what the tuning adds
    at_default = system_result(
        name, data, y_true, (probs >= 0.5).astype("f"), train_seconds=train_s,
        predict_seconds=predict_s, load_before=load,
    )
    return system_result(
        name, data, y_true, (probs >= thresholds[None, :]).astype("f"), train_seconds=train_s,
        predict_seconds=predict_s, load_before=load,
        extra={
            "ece": ece_result(data, probs),
            "holdout_ece": {"before": tuning["before"]["ece"], "after": tuning["after"]["ece"]},
            "tune_seconds": round(tune_s, 1),
            "thresholds": tuned,
            "tune_method": args.tune_method,
            "holdout_macro_f": {"before": tuning["before"]["macro_f"], "after": tuning["after"]["macro_f"]},
            "at_threshold_0.5": _averages_only(at_default),
            "settings": {"config": str(args.config), "overrides": overrides, "variant": variant, "trained_model": str(args.mlbert_model) if args.mlbert_model else None, "staged": {"langs": args.mlbert_staged, "stage_epochs": args.stage_epochs} if args.mlbert_staged else None},
        },
    )


def _averages_only(result: Dict[str, Any]) -> Dict[str, Any]:
    """A system result's scores without its decisions and timings: a second
    row of the same system (e.g. at threshold 0.5)."""
    return {key: result[key] for key in ("per_language", "average", "zero_shot_average")}


def run_ensemble(data: BenchData, y_true: numpy.ndarray, holdout, args: argparse.Namespace) -> Dict[str, Any]:
    """The mean probabilities of several trained pipelines (a seed ensemble),
    calibrated per label and tuned on the held-out slice as tune_pipeline
    tunes one pipeline, then scored."""
    from spacy_mlbert.calibration import apply_calibration, calibration_arrays, calibration_errors, fit_calibration, logits_from_probs
    from spacy_mlbert.evaluation import load_pipeline
    from spacy_mlbert.metrics import multilabel_scores
    from spacy_mlbert.tuning.thresholds import tune_thresholds

    load = _loadavg()
    members = [Path(p) for p in args.mlbert_ensemble.split(",") if p]
    eval_probs, holdout_probs, predict_s = [], [], 0.0
    for member in members:
        nlp = load_pipeline(member)
        start = time.perf_counter()
        eval_probs.append(common.pipe_probs(nlp, [r.text for r in data.eval], data.labels, batch_size=args.batch_size))
        predict_s += time.perf_counter() - start
        holdout_probs.append(common.pipe_probs(nlp, [r.text for r in holdout], data.labels, batch_size=args.batch_size))
        del nlp
        common.free_memory()
    raw, held_raw = numpy.mean(eval_probs, axis=0), numpy.mean(holdout_probs, axis=0)
    held_true, held_known = common.label_arrays(holdout, data.labels)
    parameters, _ = fit_calibration(held_true, held_raw, held_known, data.labels)
    scale, shift = calibration_arrays(parameters, data.labels)
    probs = apply_calibration(logits_from_probs(raw), scale, shift)
    held = apply_calibration(logits_from_probs(held_raw), scale, shift)
    tuned = tune_thresholds(held_true, held, held_known, data.labels, method=args.tune_method)
    cuts = numpy.asarray([tuned[label] for label in data.labels], dtype="f")
    at_half = {label: 0.5 for label in data.labels}
    at_default = system_result(args.mlbert_name, data, y_true, (raw >= 0.5).astype("f"), train_seconds=0.0, predict_seconds=predict_s, load_before=load)
    return system_result(
        args.mlbert_name, data, y_true, (probs >= cuts[None, :]).astype("f"), train_seconds=0.0,
        predict_seconds=predict_s, load_before=load,
        extra={
            "ece": ece_result(data, probs),
            "holdout_ece": {"before": calibration_errors(held_true, held_raw, held_known, data.labels)["macro"], "after": calibration_errors(held_true, held, held_known, data.labels)["macro"]},
            "thresholds": tuned,
            "tune_method": args.tune_method,
            "holdout_macro_f": {
                "before": multilabel_scores(held_true, held_raw, held_known, data.labels, at_half)["macro_f"],
                "after": multilabel_scores(held_true, held, held_known, data.labels, tuned)["macro_f"],
            },
            "at_threshold_0.5": _averages_only(at_default),
            "settings": {"ensemble": [str(m) for m in members], "calibration": parameters},
        },
    )


def train_staged(config, paths: Dict[str, Path], args: argparse.Namespace, name: str):
    """mlbert by staged training on the same fit and held-out DocBins: its
    joint phase is sized as the default's run (the same epochs, per-epoch
    scoring and schedule; ``phase_overrides``), preceded by one phase of
    ``--stage-epochs`` per language. RETURNS the joint phase's model-best and
    the wall seconds of all phases."""
    from spacy_mlbert.training.staged import parse_langs
    from spacy_mlbert.training.staged import train_staged as run_phases

    config_path = paths["work"] / f"{name}.cfg"
    config["training"]["max_epochs"] = args.epochs
    config.to_disk(config_path)
    start = time.perf_counter()
    phases = run_phases(
        config_path, paths["fit"], paths["holdout"], paths["work"] / name,
        langs=parse_langs(args.mlbert_staged), encoder=str(args.encoder),
        stage_overrides={"training.max_epochs": args.stage_epochs},
    )
    return phases["joint"], time.perf_counter() - start


def _train_cell(result: Dict[str, Any]) -> str:
    # a kept model scored again (--mlbert-model) was trained by another run
    if result.get("settings", {}).get("trained_model"):
        return "- (kept model)"
    return f"{result['train_seconds']:.0f}"


def _cleanup(path: Path, args: argparse.Namespace) -> None:
    # trained e5 pipelines are ~0.5 GB each (model-best and model-last)
    if not args.keep_models and path.exists():
        shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Train and score every selected system; RETURNS the results dict."""
    import torch

    started = common.now_iso()
    t0 = time.perf_counter()
    data = load_data(args)
    log(f"data: {data.summary()['train_texts']} train, {data.summary()['eval_texts']} eval, labels {data.labels}")
    y_true, _ = common.label_arrays(data.eval, data.labels)
    # read once: both spaCy systems get the same config even if the file
    # changes during the run (others edit the project at the same time)
    project_config = common.load_project_config(args.config)
    temp = None
    work = args.work_dir
    if work is None:
        temp = tempfile.TemporaryDirectory(prefix="mlbert-quality-")
        work = Path(temp.name)
    work.mkdir(parents=True, exist_ok=True)
    fit, holdout, removed = common.split_holdout(data.train, data.labels, args.holdout, args.seed)
    paths = {
        "work": work,
        "fit": common.write_docbin(fit, data.labels, work / "fit.spacy"),
        "holdout": common.write_docbin(holdout, data.labels, work / "holdout.spacy"),
    }
    results: Dict[str, Any] = {
        "benchmark": "quality",
        "command": common.command_line(),
        "date": started,
        "settings": {
            "dataset": args.dataset,
            "train_dir": str(args.train_dir),
            "eval_dir": str(args.eval_dir or args.train_dir),
            "langs": data.train_langs,
            "zero_shot_langs": data.zero_shot_langs,
            "n_per_lang": args.n,
            "eval_n": args.eval_n,
            "encoder": str(args.encoder),
            "epochs_spacy": args.epochs,
            "epochs_plain": args.plain_epochs,
            "selection": args.selection,
            "holdout_share": args.holdout,
            "seed": args.seed,
            "train_seed": args.train_seed,
            "fit_texts": len(fit),
            "holdout_texts": len(holdout),
            "duplicates_removed_before_holdout_split": len(removed),
            **data.summary(),
            "eval_ids": [r.id for r in data.eval],
        },
        "versions": common.versions(),
        "git": common.git_state(),
        "config_text": project_config.to_str(),
        "machine": common.machine(),
        "systems": {},
    }
    torch.manual_seed(args.seed)
    for system in args.systems:
        log(f"system {system}: start (load {_loadavg()[0]:.2f})")
        cpu_start = time.process_time()
        if system == "tfidf":
            result = run_tfidf(data, y_true, fit, holdout, args)
        elif system == "plain":
            result = run_plain(data, y_true, args)
        elif system == "stock":
            result = run_stock(data, y_true, paths, args, len(fit), project_config, holdout)
        elif args.mlbert_ensemble:
            result = run_ensemble(data, y_true, holdout, args)
        else:
            result = run_mlbert(data, y_true, paths, args, len(fit), project_config)
        key = args.mlbert_name if system == "mlbert" else system
        # on a shared machine wall seconds also count others' work: CPU
        # seconds of this process (training, prediction and scoring) beside them
        result["cpu_seconds_whole_system"] = round(time.process_time() - cpu_start, 1)
        results["systems"][key] = result
        log(f"system {key}: average macro-F1 {result['average']['macro_f']:.4f}, train {result['train_seconds']} s")
        _write(results, args.out)  # after each system, so a cut-off run keeps its figures
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    results["machine_at_end"] = {"load_average_1_5_15": [round(x, 2) for x in _loadavg()]}
    _write(results, args.out)
    if temp is not None:
        temp.cleanup()
    return results


def _write(results: Dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf8")


def markdown(results: Dict[str, Any]) -> str:
    """Tables of macro-F1 and micro-F1 per language and system, plus seconds."""
    systems = table_systems(results["systems"])
    names = list(systems)
    langs = results["settings"]["langs"] + results["settings"]["zero_shot_langs"]
    zero = set(results["settings"]["zero_shot_langs"])
    lines: List[str] = []
    for key, title in (("macro_f", "macro-F1"), ("micro_f", "micro-F1")):
        lines += [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for lang in langs:
            cells = [_fmt(systems[s]["per_language"].get(lang, {}).get(key)) for s in names]
            label = f"{lang} (zero-shot)" if lang in zero else lang
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("| **average** | " + " | ".join(f"**{_fmt(systems[s]['average'][key])}**" for s in names) + " |")
        if zero:
            lines.append("| zero-shot average | " + " | ".join(_fmt(systems[s]["zero_shot_average"][key]) for s in names) + " |")
        lines.append("")
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines.append("| training s | " + " | ".join(_train_cell(systems[s]) for s in names) + " |")
    lines.append("| dev prediction s | " + " | ".join(f"{systems[s]['predict_seconds']:.0f}" for s in names) + " |")
    return "\n".join(lines) + "\n"


def table_systems(systems: Dict[str, Any]) -> Dict[str, Any]:
    """The systems of a run as the tables show them: stock's tuned
    thresholds (``with_tuned_thresholds``) become a column of their own,
    ``stock+tuning``, right after ``stock`` (same training, same seconds).
    report.py --paired compares against it by that name."""
    shown: Dict[str, Any] = {}
    for name, result in systems.items():
        shown[name] = result
        tuned = result.get("with_tuned_thresholds")
        if tuned and f"{name}+tuning" not in systems:
            shown[f"{name}+tuning"] = {
                **{k: v for k, v in result.items() if k not in ("with_tuned_thresholds", "predictions")},
                **tuned,
                "description": DESCRIPTIONS["stock+tuning"],
            }
    return shown


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    results = run(args)
    print(markdown(results))
    print(f"Wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
