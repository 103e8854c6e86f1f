"""Render results JSON files of quality.py / speed.py as Markdown tables.

    python benchmarks/report.py benchmarks/results/goemotions_n2000.json
    python benchmarks/report.py --experiments benchmarks/results/brighter_n600_*.json
    python benchmarks/report.py benchmarks/results/speed_train_vs_stock_rerun4.json
    python benchmarks/report.py --paired mlbert,stock+tuning --bootstrap 1000 \
        benchmarks/results/brighter_n600_{stock,mlbert}.json
    python benchmarks/report.py --timings benchmarks/results/brighter_n600_*.json
    python benchmarks/report.py --seeds mlbert,stock+tuning --out benchmarks/results/goemotions_n2000_seeds.json \
        benchmarks/results/goemotions_n2000_seed{0,1,2}.json

A stock run's tuned thresholds are the system ``stock+tuning`` in every table
and in --paired.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402
import speed  # noqa: E402


def experiments_table(runs: Sequence[Dict[str, Any]]) -> str:
    """One row per system of every run: the experiments table."""
    lines = [
        "| run | system | variant | epochs | avg macro-F1 | avg micro-F1 | avg macro-F1 @0.5 | training s | load (1 min) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        name = Path(run["_path"]).stem
        for system, result in quality.table_systems(run["systems"]).items():
            settings = result.get("settings", {})
            variant = settings.get("variant")
            variant_text = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in variant.items()) if variant else ("project config" if system.startswith("mlbert") else "")
            epochs = (
                run["settings"]["epochs_spacy"]
                if system not in ("tfidf", "plain")
                else (run["settings"]["epochs_plain"] if system == "plain" else "")
            )
            at_half = result.get("at_threshold_0.5", {}).get("average", {}).get("macro_f")
            lines.append(
                f"| {name} | {system} | {variant_text} | {epochs} | {quality._fmt(result['average']['macro_f'])} | "
                f"{quality._fmt(result['average']['micro_f'])} | {quality._fmt(at_half)} | {result['train_seconds']:.0f} | "
                f"{result['load_average_before'][0]:.1f} |"
            )
    return "\n".join(lines) + "\n"


# settings that must agree before two quality runs' systems can share a table
SAME_DATA_KEYS = ("dataset", "langs", "zero_shot_langs", "n_per_lang", "eval_n", "seed", "encoder", "train_texts", "eval_texts", "fit_texts", "holdout_texts", "lang_labels")


def trained_languages_only(run: Dict[str, Any]) -> Dict[str, Any]:
    """The run restricted to the texts of the languages it trained on: runs
    that scored different zero-shot languages can then be merged and paired
    on what they share (the averages and the paired bootstrap use only the
    trained languages anyway)."""
    settings = run["settings"]
    zero = set(settings.get("zero_shot_langs", []))
    if not zero:
        return run
    lang_of = {}
    for lang, count in settings["eval_texts"].items():
        lang_of.update({len(lang_of) + i: lang for i in range(count)})
    keep = [i for i in sorted(lang_of) if lang_of[i] not in zero]

    def trim(result: Dict[str, Any]) -> Dict[str, Any]:
        result = dict(result)
        if "predictions" in result:
            result["predictions"] = [result["predictions"][i] for i in keep]
        if "per_language" in result:
            result["per_language"] = {k: v for k, v in result["per_language"].items() if k not in zero}
        result["zero_shot_average"] = {"macro_f": None, "micro_f": None}
        return result

    systems = {}
    for name, result in run["systems"].items():
        systems[name] = trim(result)
        if "with_tuned_thresholds" in result:
            systems[name]["with_tuned_thresholds"] = trim(result["with_tuned_thresholds"])
    new_settings = dict(
        settings,
        zero_shot_langs=[],
        eval_ids=[settings["eval_ids"][i] for i in keep],
        eval_texts={k: v for k, v in settings["eval_texts"].items() if k not in zero},
        lang_labels={k: v for k, v in settings["lang_labels"].items() if k not in zero},
    )
    return dict(run, settings=new_settings, systems=systems)


def _shared_config(run: Dict[str, Any]) -> Dict[str, Any]:
    """The run's project config without the mlbert_textcat block: what the
    anchors share (stock trains with it, its own component swapped in). The
    mlbert system's own settings differ by design between experiments and
    are recorded with it (settings.variant, config_text)."""
    from thinc.api import Config

    config = Config().from_str(run["config_text"], interpolate=False)
    config["components"].pop("mlbert_textcat", None)
    return config


def merge(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The systems of several quality runs on the same texts, in one results dict.

    Raises ValueError when the runs did not use the same texts and settings.
    """
    base = runs[0]
    merged = dict(base, systems={}, merged_from=[r["_path"] for r in runs])
    for run in runs:
        for key in SAME_DATA_KEYS:
            if run["settings"].get(key) != base["settings"].get(key):
                raise ValueError(f"{run['_path']}: setting '{key}' differs from {base['_path']}")
        if run.get("config_text") and base.get("config_text") and _shared_config(run) != _shared_config(base):
            raise ValueError(f"{run['_path']}: the project config differs from {base['_path']} outside the mlbert_textcat component")
        for name, result in run["systems"].items():
            merged["systems"][name] = result
    return merged


def reload_data(settings: Dict[str, Any], train_dir: Path = None, eval_dir: Path = None):
    """The data a run scored (its own loader, with the data settings it
    recorded; or the folders given), checked against the texts it names."""
    data = quality.load_data(argparse.Namespace(
        dataset=settings["dataset"], train_dir=Path(train_dir or settings["train_dir"]),
        eval_dir=Path(eval_dir or settings["eval_dir"]), langs=settings["langs"], n=settings["n_per_lang"],
        zero_shot_langs=settings["zero_shot_langs"], eval_n=settings["eval_n"], seed=settings["seed"],
    ))
    if [r.id for r in data.eval] != settings.get("eval_ids"):
        raise ValueError("the reloaded evaluation texts are not the ones the runs scored (different data folder?)")
    return data


def decisions(run: Dict[str, Any], name: str) -> "numpy.ndarray":
    """A system's stored 0/1 decisions (stock's tuned ones: ``stock+tuning``)."""
    import numpy

    systems = quality.table_systems(run["systems"])
    if name not in systems:
        raise ValueError(f"{run['_path']}: no system '{name}' (it has: {', '.join(systems)})")
    if "predictions" not in systems[name]:
        raise ValueError(f"{run['_path']}: system '{name}' was run before quality.py stored its decisions; run it again")
    return numpy.asarray([[c == "1" for c in row] for row in systems[name]["predictions"]], dtype="f")


def paired(merged: Dict[str, Any], a: str, b: str, resamples: int, train_dir: Path = None, eval_dir: Path = None) -> Dict[str, Any]:
    """Bootstrap interval of system a's average macro-F1 minus system b's,
    from the decisions stored in the runs and the gold labels reloaded from
    the data the runs name (or the folders given)."""
    import benchlib as common

    pred_a, pred_b = decisions(merged, a), decisions(merged, b)
    data = reload_data(merged["settings"], train_dir, eval_dir)
    y_true, _ = common.label_arrays(data.eval, data.labels)
    result = common.paired_bootstrap(
        y_true, pred_a, pred_b, [r.lang for r in data.eval], data.labels, data.lang_labels,
        data.train_langs, resamples=resamples,
    )
    return {"a": a, "b": b, **result}


def over_seeds(runs: Sequence[Dict[str, Any]], a: str, b: str, resamples: int, train_dir: Path = None, eval_dir: Path = None) -> Dict[str, Any]:
    """Runs of the same data with different training seeds (quality.py
    --train-seed): each seed's average macro-F1 of a and b, the mean
    difference over seeds with a bootstrap interval over the texts (every
    seed's decisions resampled with the same texts), and macro-F1 by label
    frequency: the labels in thirds by their positives among the training
    texts (rare, middle, frequent), each label's F1 averaged over seeds.
    Runs without a training seed (e.g. the TF-IDF anchor's, which draws
    nothing) join every seed's systems."""
    import numpy

    import benchlib as common

    merge(runs)  # the same data and config, or ValueError
    shared = [run for run in runs if run["settings"].get("train_seed") is None]
    runs = [
        dict(run, systems={**{k: v for other in shared for k, v in other["systems"].items()}, **run["systems"]})
        for run in runs
        if run["settings"].get("train_seed") is not None
    ]
    if not runs:
        raise ValueError("no run with a training seed (quality.py --train-seed)")
    data = reload_data(runs[0]["settings"], train_dir, eval_dir)
    y_true, _ = common.label_arrays(data.eval, data.labels)
    langs = [r.lang for r in data.eval]
    preds_a = [decisions(run, a) for run in runs]
    preds_b = [decisions(run, b) for run in runs]
    per_seed = []
    for run, pred_a, pred_b in zip(runs, preds_a, preds_b):
        score = {
            name: common.averages(common.official_scores(y_true, pred, langs, data.labels, data.lang_labels), data.train_langs)["macro_f"]
            for name, pred in ((a, pred_a), (b, pred_b))
        }
        per_seed.append({"file": run["_path"], "train_seed": run["settings"].get("train_seed"), **score, "difference": score[a] - score[b]})
    differences = [row["difference"] for row in per_seed]
    pooled = common.paired_bootstrap(y_true, preds_a, preds_b, langs, data.labels, data.lang_labels, data.train_langs, resamples=resamples)
    # label frequency: positives per label among the training texts
    train_y, train_known = common.label_arrays(data.train, data.labels)
    positives = (train_y * train_known).sum(axis=0)
    order = numpy.argsort(positives, kind="stable")
    thirds = numpy.array_split(order, 3)
    names = [name for name in quality.table_systems(runs[0]["systems"]) if all("predictions" in quality.table_systems(r["systems"]).get(name, {}) for r in runs)]
    per_label = {name: _per_label_f1(y_true, [decisions(run, name) for run in runs]) for name in names}
    buckets = []
    for title, cols in zip(("rare", "middle", "frequent"), thirds):
        buckets.append({
            "bucket": title,
            "labels": [data.labels[i] for i in cols],
            "train_positives": [int(positives[i]) for i in cols],
            "macro_f": {name: float(per_label[name][cols].mean()) for name in names},
        })
    return {
        "a": a, "b": b, "per_seed": per_seed,
        "mean_difference": float(numpy.mean(differences)),
        "seed_sd_of_difference": float(numpy.std(differences, ddof=1)) if len(differences) > 1 else None,
        "pooled_bootstrap": pooled, "label_frequency": buckets,
    }


def _per_label_f1(y_true: "numpy.ndarray", runs: Sequence["numpy.ndarray"]) -> "numpy.ndarray":
    """Each label's F1 (scikit-learn, zero_division=0), averaged over runs."""
    import numpy
    from sklearn.metrics import f1_score

    return numpy.mean([f1_score(y_true.astype(int), pred.astype(int), average=None, zero_division=0) for pred in runs], axis=0)


def seeds_markdown(result: Dict[str, Any]) -> str:
    a, b = result["a"], result["b"]
    lines = [f"| training seed | {a} | {b} | {a} − {b} |", "|---:|---:|---:|---:|"]
    lines += [f"| {row['train_seed']} | {row[a]:.3f} | {row[b]:.3f} | {row['difference']:+.3f} |" for row in result["per_seed"]]
    pooled = result["pooled_bootstrap"]
    sd = result["seed_sd_of_difference"]
    lines += [
        "",
        f"Mean over {len(result['per_seed'])} seeds: {a} − {b} **{result['mean_difference']:+.3f}** "
        f"[{pooled['low_2.5']:+.3f}, {pooled['high_97.5']:+.3f}] (95 %, texts resampled, {pooled['resamples']} resamples)"
        + (f"; seed sd of the difference {sd:.3f}" if sd is not None else ""),
        "",
    ]
    names = list(result["label_frequency"][0]["macro_f"])
    lines += ["| labels by training frequency | positives | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    for bucket in result["label_frequency"]:
        span = f"{min(bucket['train_positives'])}-{max(bucket['train_positives'])}"
        lines.append(f"| {bucket['bucket']} ({len(bucket['labels'])}) | {span} | " + " | ".join(f"{bucket['macro_f'][n]:.3f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--experiments", action="store_true", help="One row per system and run")
    parser.add_argument("--merge", action="store_true", help="One table of the systems of several quality runs on the same texts")
    parser.add_argument("--paired", metavar="A,B", help="Bootstrap interval of system A's average macro-F1 minus B's (runs on the same texts)")
    parser.add_argument("--seeds", metavar="A,B", help="Runs of the same data with other training seeds (quality.py --train-seed): A − B per seed, the mean over seeds with an interval, macro-F1 by label frequency")
    parser.add_argument("--out", type=Path, help="--seeds: also write the result as JSON here")
    parser.add_argument("--timings", action="store_true", help="Reruns of the same settings: median training seconds per system, and every rerun")
    parser.add_argument("--trained-langs-only", action="store_true", help="--merge/--paired: keep only the texts of the trained languages, so runs with different zero-shot languages combine")
    parser.add_argument("--bootstrap", type=int, default=1000, help="Resamples for --paired")
    parser.add_argument("--train-dir", type=Path, help="--paired: the training CSVs, if not where the runs found them")
    parser.add_argument("--eval-dir", type=Path, help="--paired: the evaluation CSVs, if not where the runs found them")
    args = parser.parse_args(argv)
    runs: List[Dict[str, Any]] = []
    for path in args.files:
        data = json.loads(path.read_text(encoding="utf8"))
        data["_path"] = str(path)
        if args.trained_langs_only and data.get("benchmark") == "quality":
            data = trained_languages_only(data)
        runs.append(data)
    if args.timings:
        import benchlib

        print(benchlib.timings_markdown(benchlib.rerun_timings([r for r in runs if r.get("benchmark") == "quality"])))
        return
    if args.experiments:
        print(experiments_table([r for r in runs if r.get("benchmark") == "quality"]))
        return
    if args.seeds:
        names = [n.strip() for n in args.seeds.split(",")]
        try:
            result = over_seeds([r for r in runs if r.get("benchmark") == "quality"], *names, args.bootstrap, args.train_dir, args.eval_dir)
        except (OSError, ValueError, TypeError) as err:
            sys.exit(f"Cannot compare: {err}")
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
        print(seeds_markdown(result))
        return
    if args.paired:
        names = [n.strip() for n in args.paired.split(",")]
        if len(names) != 2:
            sys.exit("--paired takes two system names, e.g. --paired mlbert,stock+tuning")
        try:
            result = paired(merge([r for r in runs if r.get("benchmark") == "quality"]), *names, args.bootstrap, args.train_dir, args.eval_dir)
        except (OSError, ValueError) as err:
            sys.exit(f"Cannot compare: {err}")
        print(
            f"{result['a']} - {result['b']}: average macro-F1 difference {result['difference']:+.4f}, "
            f"95 % interval [{result['low_2.5']:+.4f}, {result['high_97.5']:+.4f}] (sd {result['sd']:.4f}); "
            f"{result['a']} not ahead in {100 * result['share_not_ahead']:.1f} % of {result['resamples']} resamples"
        )
        return
    if args.merge:
        try:
            merged = merge([r for r in runs if r.get("benchmark") == "quality"])
        except ValueError as err:
            sys.exit(f"Cannot merge: {err}")
        print(quality.markdown(merged))
        return
    for run in runs:
        print(f"## {run['_path']}\n\n`{run['command']}` ({run['date']})\n")
        print(quality.markdown(run) if run.get("benchmark") == "quality" else speed.report(run))


if __name__ == "__main__":
    main()
