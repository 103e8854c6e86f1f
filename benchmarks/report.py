"""Render results JSON files of quality.py / speed.py as Markdown tables.

    python benchmarks/report.py benchmarks/results/goemotions_n2000.json
    python benchmarks/report.py --experiments benchmarks/results/brighter_n600_*.json
    python benchmarks/report.py benchmarks/results/speed_train_vs_stock_rerun4.json
    python benchmarks/report.py --paired mlbert,stock+tuning --bootstrap 1000 \
        benchmarks/results/brighter_n600_{stock,mlbert}.json
    python benchmarks/report.py --timings benchmarks/results/brighter_n600_*.json

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


def paired(merged: Dict[str, Any], a: str, b: str, resamples: int, train_dir: Path = None, eval_dir: Path = None) -> Dict[str, Any]:
    """Bootstrap interval of system a's average macro-F1 minus system b's,
    from the decisions stored in the runs and the gold labels reloaded from
    the data the runs name (or the folders given)."""
    import benchlib as common

    settings = merged["settings"]
    systems = quality.table_systems(merged["systems"])
    for name in (a, b):
        if name not in systems:
            raise ValueError(f"no system '{name}' in the runs (they have: {', '.join(systems)})")
        if "predictions" not in systems[name]:
            raise ValueError(f"system '{name}' was run before quality.py stored its decisions; run it again")
    # the runs' own loader, with the data settings they recorded
    data = quality.load_data(argparse.Namespace(
        dataset=settings["dataset"], train_dir=Path(train_dir or settings["train_dir"]),
        eval_dir=Path(eval_dir or settings["eval_dir"]), langs=settings["langs"], n=settings["n_per_lang"],
        zero_shot_langs=settings["zero_shot_langs"], eval_n=settings["eval_n"], seed=settings["seed"],
    ))
    if [r.id for r in data.eval] != settings.get("eval_ids"):
        raise ValueError("the reloaded evaluation texts are not the ones the runs scored (different data folder?)")
    y_true, _ = common.label_arrays(data.eval, data.labels)

    def decisions(name: str) -> "numpy.ndarray":
        import numpy

        return numpy.asarray([[c == "1" for c in row] for row in systems[name]["predictions"]], dtype="f")

    result = common.paired_bootstrap(
        y_true, decisions(a), decisions(b), [r.lang for r in data.eval], data.labels, data.lang_labels,
        data.train_langs, resamples=resamples,
    )
    return {"a": a, "b": b, **result}


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--experiments", action="store_true", help="One row per system and run")
    parser.add_argument("--merge", action="store_true", help="One table of the systems of several quality runs on the same texts")
    parser.add_argument("--paired", metavar="A,B", help="Bootstrap interval of system A's average macro-F1 minus B's (runs on the same texts)")
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
