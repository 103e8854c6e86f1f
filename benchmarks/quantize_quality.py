"""Quality of the int8 pipeline against the fp32 one it was made from.

The same trained (calibrated and tuned) pipeline is scored on the same dev
texts as it is (fp32) and after ``spacy-mlbert quantize`` (each value of
--quantize), once keeping its fp32 calibration and thresholds and, with
--refit-dev, once refitting them on the quantized model (``quantize --dev``).
The refit slice must not hold any scored text (checked): the n600 run's own
tuning slice (``holdout.spacy`` in quality.py's --work-dir) is the fair one,
the slice the fp32 pipeline was tuned on.

Scores follow benchmarks/quality.py: the task's macro-F1 per language over
the label columns each file has, averaged over languages, ECE of doc.cats;
plus the paired bootstrap interval of the macro-F1 difference (int8 - fp32)
and the share of scored label cells on which int8 and fp32 decide alike.
--memory adds, per variant, the size on disk and the peak resident memory
of a fresh process that loads the pipeline and predicts the dev texts
(speed.peak_rss_mb). No speed is measured here (benchmarks/speed.py does).

Dynamic int8 quantizes each linear layer's input with one scale for the
whole batch, so a text's int8 probabilities depend a little on the texts
batched with it: ``batch_dependence`` predicts the first --batch-check texts
one at a time and compares them with the batched run.

    python benchmarks/quantize_quality.py --model /work/runs/n600/mlbert-tuned \
        --eval-dir ../shared/data/brighter/dev --langs eng,rus,chn,hin,arq \
        --refit-dev /work/runs/n600/holdout.spacy \
        --out benchmarks/results/quantize_quality_brighter_n600.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402
from benchlib import BenchData, log  # noqa: E402
from quality import ece_result  # noqa: E402

from spacy_mlbert.atomic import write_json_atomic  # noqa: E402
from spacy_mlbert.quantization import INT8, NONE, QUANTIZE_OPTIONS  # noqa: E402
from spacy_mlbert.tuning.thresholds import DEFAULT_METHOD, TUNING_METHODS  # noqa: E402

FP32 = "fp32"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="The trained, calibrated and tuned fp32 pipeline")
    parser.add_argument("--eval-dir", type=Path, help="Folder of dev <lang>.csv (SemEval-2025 Task 11 track A)")
    parser.add_argument("--langs", default="eng,rus,chn,hin,arq", help="Languages the model was trained on, scored and averaged")
    parser.add_argument("--zero-shot-langs", default="", help="Languages only scored (their own average)")
    parser.add_argument("--eval-n", type=int, default=0, help="Texts per language, first N after a seed-0 shuffle (0: all)")
    parser.add_argument("--quantize", default=INT8, help=f"Comma-separated values of {','.join(q for q in QUANTIZE_OPTIONS if q != NONE)}")
    parser.add_argument("--refit-dev", type=Path, help="Gold .spacy (no scored text in it) to refit calibration and thresholds on, as quantize --dev")
    parser.add_argument("--tune-method", choices=TUNING_METHODS, default=DEFAULT_METHOD)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resamples", type=int, default=1000, help="Paired bootstrap resamples")
    parser.add_argument("--work-dir", type=Path, help="Where the quantized pipelines go (default: a temporary folder, deleted)")
    parser.add_argument("--batch-check", type=int, default=64, help="Texts predicted one at a time too, to see how much int8 depends on the batch (0: skip)")
    parser.add_argument("--memory", action="store_true", help="Also size on disk and peak RSS of load + predict, one fresh process per variant")
    parser.add_argument("--seed", type=int, default=common.SEED)
    parser.add_argument("--child-memory", nargs=2, metavar=("MODEL", "TEXTS_JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("quantize_quality.json"))
    args = parser.parse_args(argv)
    if args.child_memory:
        return args
    if args.model is None or args.eval_dir is None:
        parser.error("--model and --eval-dir are required")
    args.langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()]
    args.zero_shot_langs = [lang.strip() for lang in args.zero_shot_langs.split(",") if lang.strip()]
    args.quantize = [q.strip() for q in args.quantize.split(",") if q.strip()]
    bad = [q for q in args.quantize if q not in QUANTIZE_OPTIONS or q == NONE]
    if bad or not args.quantize:
        parser.error(f"--quantize: unknown {bad}")
    return args


def load_eval(args: argparse.Namespace) -> BenchData:
    """Only the dev files: every language is read as 'zero-shot' (no training
    CSV needed), then the trained ones are put back where they belong."""
    langs = args.langs + args.zero_shot_langs
    data = common.load_semeval(args.eval_dir, args.eval_dir, [], 0, zero_shot_langs=langs, eval_n=args.eval_n, seed=args.seed)
    data.train_langs, data.zero_shot_langs = list(args.langs), list(args.zero_shot_langs)
    return data


def check_refit_slice(refit_dev: Path, data: BenchData) -> int:
    """Raise if a text of the refit slice is also scored. RETURNS its size."""
    import spacy

    from spacy_mlbert.evaluation.evaluate import read_gold_docs

    texts = [doc.text for doc in read_gold_docs(spacy.blank("xx"), refit_dev)]
    scored = {record.text for record in data.eval}
    shared = [text for text in texts if text in scored]
    if shared:
        raise SystemExit(f"--refit-dev {refit_dev} holds {len(shared)} scored text(s), e.g. {shared[0]!r}: refit on other texts")
    return len(texts)


def predict(path: Path, data: BenchData, batch_size: int, batch_check: int = 0) -> Dict[str, Any]:
    """doc.cats and decisions (at the pipeline's own thresholds) of every
    eval text; with ``batch_check``, also those of the first texts one at a time."""
    from spacy_mlbert.evaluation import find_textcat, load_pipeline

    nlp = load_pipeline(path)
    _, textcat = find_textcat(nlp)
    texts = [r.text for r in data.eval]
    probs = common.pipe_probs(nlp, texts, data.labels, batch_size=batch_size)
    thresholds = dict(textcat.thresholds)
    cut = numpy.asarray([thresholds.get(label, 0.5) for label in data.labels], dtype="f")
    result = {"probs": probs, "pred": (probs >= cut[None, :]).astype("f"), "thresholds": thresholds}
    if batch_check:
        alone = common.pipe_probs(nlp, texts[:batch_check], data.labels, batch_size=1)
        n = len(alone)
        cells = scored_cells(data)[:n]
        diff = numpy.abs(alone - probs[:n])[cells]
        result["batch_dependence"] = {
            "texts": n,
            "prob_abs_diff_mean": float(diff.mean()),
            "prob_abs_diff_max": float(diff.max()),
            "decision_agreement": float(((alone >= cut[None, :]) == (probs[:n] >= cut[None, :]))[cells].mean()),
        }
    del nlp, textcat
    common.free_memory()
    return result


def scored_cells(data: BenchData) -> numpy.ndarray:
    """(n, n_labels) True where a text's language file has the label: the cells the metric scores."""
    mask = numpy.zeros((len(data.eval), len(data.labels)), dtype=bool)
    for i, record in enumerate(data.eval):
        for label in data.lang_labels.get(record.lang, []):
            mask[i, data.labels.index(label)] = True
    return mask


def child_memory(model: str, texts_path: str) -> Dict[str, float]:
    """In a fresh process: peak RSS (MB) after spacy.load, and after
    predicting the texts; resident memory after both."""
    import spacy

    from speed import peak_rss_mb

    nlp = spacy.load(model)
    loaded = peak_rss_mb()
    texts = json.loads(Path(texts_path).read_text(encoding="utf8"))
    for _ in nlp.pipe(texts, batch_size=64):
        pass
    return {"peak_rss_mb_load": loaded, "peak_rss_mb_load_and_predict": peak_rss_mb(), "rss_mb_end": _rss_mb()}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_result(model: Path, data: BenchData, work: Path) -> Dict[str, Any]:
    """Size on disk (MB) and child_memory of one pipeline."""
    texts = work / "memory-texts.json"
    texts.write_text(json.dumps([r.text for r in data.eval], ensure_ascii=False), encoding="utf8")
    command = [sys.executable, __file__, "--child-memory", str(model), str(texts)]
    # the child imports this checkout's spacy_mlbert, as this process does
    # (an editable install may point at another worktree)
    path = os.pathsep.join(filter(None, [str(common.REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {model} failed:\n{proc.stderr[-3000:]}")
    sizes = [path.stat().st_size for path in Path(model).rglob("*") if path.is_file()]
    return {"disk_mb": sum(sizes) / 2**20, **json.loads(proc.stdout.strip().splitlines()[-1])}


def write_atomic_pipeline(nlp: Any, path: Path) -> None:
    from spacy_mlbert.atomic import write_atomic

    write_atomic(path, nlp.to_disk)


def variant_result(data: BenchData, y_true: numpy.ndarray, run: Dict[str, Any], reference: Optional[Dict[str, Any]], args) -> Dict[str, Any]:
    langs = [r.lang for r in data.eval]
    per_lang = common.official_scores(y_true, run["pred"], langs, data.labels, data.lang_labels)
    result: Dict[str, Any] = {
        "per_language": per_lang,
        "average": common.averages(per_lang, data.train_langs),
        "zero_shot_average": common.averages(per_lang, data.zero_shot_langs),
        "ece": ece_result(data, run["probs"]),
        "thresholds": run["thresholds"],
    }
    if "batch_dependence" in run:
        result["batch_dependence"] = run["batch_dependence"]
    if reference is not None:
        cells = scored_cells(data)
        same = run["pred"] == reference["pred"]
        diff = numpy.abs(run["probs"] - reference["probs"])[cells]
        result["against_fp32"] = {
            "decision_agreement": float(same[cells].mean()),
            "decision_agreement_per_language": {
                lang: float(same[rows][cells[rows]].mean())
                for lang in data.lang_labels
                for rows in [numpy.asarray(langs, dtype=object) == lang]
                if rows.any()
            },
            "prob_abs_diff_mean": float(diff.mean()),
            "prob_abs_diff_max": float(diff.max()),
            "macro_f_paired_bootstrap": common.paired_bootstrap(
                y_true, run["pred"], reference["pred"], langs, data.labels, data.lang_labels,
                data.train_langs, resamples=args.resamples, seed=args.seed,
            ),
        }
    return result


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from spacy_mlbert.cli.quantize import quantize_model

    data = load_eval(args)
    y_true, _ = common.label_arrays(data.eval, data.labels)
    refit_n = check_refit_slice(args.refit_dev, data) if args.refit_dev else None
    temp = tempfile.TemporaryDirectory(prefix="mlbert-quantize-") if args.work_dir is None else None
    work = Path(temp.name) if temp else args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Any] = {
        "benchmark": "quantize_quality",
        "command": common.command_line(),
        "date": common.now_iso(),
        "settings": {
            "model": str(args.model),
            "eval_dir": str(args.eval_dir),
            "eval_n": args.eval_n,
            "quantize": args.quantize,
            "refit_dev": str(args.refit_dev) if args.refit_dev else None,
            "refit_texts": refit_n,
            "tune_method": args.tune_method,
            "resamples": args.resamples,
            "seed": args.seed,
            **data.summary(),
            "eval_ids": [r.id for r in data.eval],
        },
        "versions": common.versions(),
        "git": common.git_state(),
        "machine": common.machine(),
        "variants": {},
    }
    log(f"fp32: {args.model}")
    reference = predict(args.model, data, args.batch_size, args.batch_check)
    results["variants"][FP32] = variant_result(data, y_true, reference, None, args)
    if args.memory:
        # measured on a copy saved by this checkout, in the layout the
        # quantize command writes: a model saved by older code (another
        # layout) would not compare like with like
        from spacy_mlbert.evaluation import load_pipeline

        resaved = work / "fp32-resaved"
        write_atomic_pipeline(load_pipeline(args.model), resaved)
        common.free_memory()
        results["variants"][FP32]["memory"] = memory_result(resaved, data, work)
    for how in args.quantize:
        for refit in ([False, True] if args.refit_dev else [False]):
            name = f"{how}+refit" if refit else how
            out = work / name
            log(f"{name}: quantize {args.model} -> {out}")
            quantize_model(
                args.model, out, how=how, dev_path=args.refit_dev if refit else None,
                batch_size=args.batch_size, method=args.tune_method,
            )
            check = args.batch_check if not refit else 0  # the same weights as without the refit
            result = variant_result(data, y_true, predict(out, data, args.batch_size, check), reference, args)
            if args.memory:
                result["memory"] = memory_result(out, data, work)
            results["variants"][name] = result
            log(f"{name}: macro-F1 {result['average']['macro_f']:.4f} (fp32 {results['variants'][FP32]['average']['macro_f']:.4f}), agreement {result['against_fp32']['decision_agreement']:.4f}")
            write_json_atomic(args.out, results)  # a cut-off run keeps what it has
    write_json_atomic(args.out, results)
    if temp is not None:
        temp.cleanup()
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.child_memory:
        print(json.dumps(child_memory(*args.child_memory)))
        return {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    return run(args)


if __name__ == "__main__":
    main()
