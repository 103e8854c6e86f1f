"""Render results JSON files of quality.py / speed.py as Markdown tables.

    python benchmarks/report.py benchmarks/results/quality_brighter_n100.json
    python benchmarks/report.py --experiments benchmarks/results/quality_*.json
    python benchmarks/report.py benchmarks/results/speed.json
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
        for system, result in run["systems"].items():
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
        if run.get("config_text") and base.get("config_text") and run["config_text"] != base["config_text"]:
            raise ValueError(f"{run['_path']}: the project config differs from {base['_path']}")
        for name, result in run["systems"].items():
            merged["systems"][name] = result
    return merged


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--experiments", action="store_true", help="One row per system and run")
    parser.add_argument("--merge", action="store_true", help="One table of the systems of several quality runs on the same texts")
    args = parser.parse_args(argv)
    runs: List[Dict[str, Any]] = []
    for path in args.files:
        data = json.loads(path.read_text(encoding="utf8"))
        data["_path"] = str(path)
        runs.append(data)
    if args.experiments:
        print(experiments_table([r for r in runs if r.get("benchmark") == "quality"]))
        return
    if args.merge:
        merged = merge([r for r in runs if r.get("benchmark") == "quality"])
        print(quality.markdown(merged))
        return
    for run in runs:
        print(f"## {run['_path']}\n\n`{run['command']}` ({run['date']})\n")
        print(quality.markdown(run) if run.get("benchmark") == "quality" else speed.report(run))


if __name__ == "__main__":
    main()
