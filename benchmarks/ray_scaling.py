"""Documents per second of the annotate engines on one machine.

The same pipeline and the same data through local nlp.pipe (with torch's
default threads and with one thread), nlp.pipe(n_process=2), and Ray with 1
and 2 actors of one CPU each (a local Ray started once on 127.0.0.1). Every
run's output is checked against the first, record for record. Prints a
Markdown table and, with --output, writes the figures as JSON.

    python benchmarks/ray_scaling.py                # e5-small, 2,000 texts
    python benchmarks/ray_scaling.py --quick        # the tests' tiny encoder

The pipeline is transformer + mlbert_textcat, trained a few steps on the
labelled reviews of corpus/reviews.jsonl (quality is not the point here);
the texts are those reviews, cycled to --n-docs records with their own ids.
"""
import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
E5_SMALL = ROOT / "encoders" / "multilingual-e5-small"
CORPUS = ROOT / "corpus" / "reviews.jsonl"


def read_reviews() -> List[Dict[str, Any]]:
    with CORPUS.open(encoding="utf8") as file_:
        return [json.loads(line) for line in file_ if line.strip()]


def build_pipeline(encoder_dir: Path, output_dir: Path, steps: int) -> Path:
    """transformer + mlbert_textcat on ``encoder_dir``, trained ``steps`` updates."""
    import spacy
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(0)
    nlp = spacy.blank("xx")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-mlbert.TransformerModel.v1",
                "name": str(encoder_dir),
                "tokenizer_config": {"use_fast": True},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
            }
        },
    )
    nlp.add_pipe(
        "mlbert_textcat",
        config={
            "model": {
                "@architectures": "spacy-mlbert.MultiLabelClassifier.v1",
                "tok2vec": {"@architectures": "spacy-mlbert.WordpieceListener.v1", "pooling": "mean"},
            }
        },
    )
    reviews = [r for r in read_reviews() if r.get("labels") is not None]
    labels = sorted({label for r in reviews for label in r["labels"]})
    examples = [
        Example.from_dict(nlp.make_doc(r["text"]), {"cats": {l: float(l in r["labels"]) for l in labels}})
        for r in reviews
    ]
    optimizer = nlp.initialize(get_examples=lambda: examples)
    random.Random(0).shuffle(examples)
    for batch in list(minibatch(examples, size=16))[:steps]:
        nlp.update(batch, sgd=optimizer)
    nlp.to_disk(output_dir)
    return output_dir


def write_corpus(path: Path, n_docs: int) -> Path:
    reviews = read_reviews()
    with path.open("w", encoding="utf8", newline="\n") as out:
        for i in range(n_docs):
            review = reviews[i % len(reviews)]
            record = {"id": f"b{i}", "lang": review.get("lang"), "text": review["text"]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny random encoder instead of e5-small")
    parser.add_argument("--n-docs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-batches", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="training updates of the pipeline")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the figures")
    args = parser.parse_args()

    import torch

    from spacy_mlbert.annotate.jsonl import annotate_jsonl
    from spacy_mlbert.annotate.engines import ray_engine
    from spacy_mlbert.annotate.engines.ray_engine import RaySettings, annotate_ray, iter_output_lines
    from spacy_mlbert.evaluation import load_pipeline

    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    if args.quick:
        sys.path.insert(0, str(ROOT / "tests"))
        from encoders import build_tiny_xlmr
        from util import TOKENIZER_TEXTS

        # the tests' tokenizer texts: a 400-piece vocabulary cannot cover every
        # character of the reviews, and speed does not depend on it
        encoder = build_tiny_xlmr(TOKENIZER_TEXTS, work / "tiny-encoder")
        model_name = "tiny XLM-R (2 layers, width 32)"
    else:
        encoder = E5_SMALL
        model_name = "multilingual-e5-small (12 layers, width 384)"
    model = build_pipeline(encoder, work / "model", args.steps)
    source = write_corpus(work / "in.jsonl", args.n_docs)
    n = args.n_docs
    results: List[Dict[str, Any]] = []

    started = time.time()
    nlp = load_pipeline(model)
    load_s = time.time() - started
    started = time.time()
    annotate_jsonl(nlp, source, work / "local.jsonl", batch_size=args.batch_size, progress=False)
    seconds = time.time() - started
    reference = (work / "local.jsonl").read_text(encoding="utf8")
    results.append({"engine": "local nlp.pipe", "workers": 1, "threads": torch.get_num_threads(),
                    "seconds": seconds, "startup_s": 0.0, "load_s": load_s})
    # the actors run one torch thread each: the same, in this process
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.time()
    annotate_jsonl(nlp, source, work / "local1.jsonl", batch_size=args.batch_size, progress=False)
    seconds = time.time() - started
    torch.set_num_threads(threads)
    _check_same(reference, (work / "local1.jsonl").read_text(encoding="utf8"), exact=False)
    results.append({"engine": "local nlp.pipe", "workers": 1, "threads": 1, "seconds": seconds})

    started = time.time()
    annotate_jsonl(nlp, source, work / "local2.jsonl", batch_size=args.batch_size, progress=False, n_process=2)
    seconds = time.time() - started
    _check_same(reference, (work / "local2.jsonl").read_text(encoding="utf8"), exact=False)
    results.append({"engine": "local nlp.pipe(n_process=2)", "workers": 2, "threads": 1, "seconds": seconds})

    import ray

    started = time.time()
    with ray_engine.loopback_only(ray):
        ray.init(include_dashboard=False, logging_level="WARNING")
    ray_init_s = time.time() - started
    try:
        for actors in (1, 2):
            settings = RaySettings(
                actors=actors, batch_size=args.batch_size, block_batches=args.block_batches, progress=False
            )
            started = time.time()
            manifest = annotate_ray(model, source, work / f"ray{actors}", settings=settings)
            seconds = time.time() - started
            _check_same(reference, "\n".join(iter_output_lines(work / f"ray{actors}")) + "\n", exact=True)
            stats = manifest["ray"]["actor_stats"]
            results.append(
                {
                    "engine": f"Ray, {actors} actor(s)",
                    "workers": actors,
                    "threads": 1,
                    "seconds": seconds,
                    "startup_s": max(s["startup_s"] for s in stats),
                    "load_s": max(s["load_s"] for s in stats),
                    "busy_s": max(s["busy_s"] for s in stats),
                    "actors_used": len(stats),
                }
            )
    finally:
        ray.shutdown()
    for row in results:
        row["docs_per_s"] = n / row["seconds"]
        if "busy_s" in row:
            # as if every actor had been ready at the start: the steady rate
            row["busy_docs_per_s"] = n / row["busy_s"]
    ray1, ray2 = results[-2], results[-1]
    summary = {
        "model": model_name,
        "n_docs": n,
        "batch_size": args.batch_size,
        "block_batches": args.block_batches,
        "ray_init_s": ray_init_s,
        "scaling_end_to_end": ray2["docs_per_s"] / ray1["docs_per_s"],
        "scaling_steady": ray2["busy_docs_per_s"] / ray1["busy_docs_per_s"],
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "results": results,
    }
    print(_table(summary))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")


def _check_same(reference: str, other: str, *, exact: bool) -> None:
    """Same records in the same order; byte-identical where the engines batch alike."""
    if exact:
        assert other == reference, "the Ray output differs from the local output"
        return
    a = [json.loads(line) for line in reference.splitlines()]
    b = [json.loads(line) for line in other.splitlines()]
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for x, y in zip(a, b):
        assert max(abs(x["cats"][k] - y["cats"][k]) for k in x["cats"]) < 1e-5


def _table(summary: Dict[str, Any]) -> str:
    lines = [
        f"{summary['model']}, {summary['n_docs']} texts, batch size {summary['batch_size']}, "
        f"{summary['cpus']} CPUs (load average {summary['load_average'][0]:.1f} at the end)",
        "",
        "| engine | workers | torch threads each | wall s | docs/s | steady docs/s | actor startup s | model load s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["results"]:
        steady = f"{row['busy_docs_per_s']:.1f}" if "busy_docs_per_s" in row else "-"
        startup = f"{row['startup_s']:.1f}" if "startup_s" in row else "-"
        load = f"{row['load_s']:.1f}" if "load_s" in row else "-"
        lines.append(
            f"| {row['engine']} | {row['workers']} | {row['threads']} | {row['seconds']:.1f} | "
            f"{row['docs_per_s']:.1f} | {steady} | {startup} | {load} |"
        )
    lines += [
        "",
        f"Ray start (once): {summary['ray_init_s']:.1f} s. Scaling 1 -> 2 actors: "
        f"{summary['scaling_end_to_end']:.2f}x end to end, {summary['scaling_steady']:.2f}x steady.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
