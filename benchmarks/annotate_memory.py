"""Memory benchmark: annotate's peak RSS over input size, with and without
spaCy's memory zones.

For each size, a JSONL file of that many bytes is made from real texts
(cycled), each record with a word of its own (``ref{i}``: ids, names, numbers
and URLs are what a long stream keeps bringing). Each (size, mode) runs
``annotate`` in a fresh subprocess and reports its peak RSS (VmHWM) and how
many strings its vocab holds at the end:

- ``zone``: annotate as shipped (each window inside ``nlp.memory_zone()``);
- ``no-zone``: the same with the zones made no-ops, i.e. annotate before
  them (the vocab keeps every new string).

Flat memory: ``zone``'s peak is the same for every size, ``no-zone``'s grows.
Nothing is timed.

    python benchmarks/annotate_memory.py --model training/model-tuned \
        --data-dir ../shared/data/brighter/train --sizes 5MB,50MB \
        --out benchmarks/results/annotate_memory.json
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402
from benchlib import log  # noqa: E402
from speed import peak_rss_mb, read_texts  # noqa: E402

import spacy_mlbert  # noqa: E402
from spacy_mlbert.atomic import write_json_atomic  # noqa: E402

MODES = ("zone", "no-zone")
parse_size = common.parse_size


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="A pipeline with mlbert_textcat")
    parser.add_argument("--data-dir", type=Path, help="SemEval CSVs (lang.csv) to take texts from")
    parser.add_argument("--langs", default="eng,rus,chn,hin,arq")
    parser.add_argument("--sizes", default="5MB,50MB", help="Input sizes, comma-separated (KB, MB, GB)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated: {', '.join(MODES)}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--work-dir", type=Path, help="Where the inputs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="Results JSON")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_input(path: Path, texts: Sequence[str], size: int) -> int:
    """A JSONL file of at least ``size`` bytes; RETURNS its number of records."""
    written = count = 0
    with path.open("w", encoding="utf8", newline="\n") as out:
        while written < size:
            text = texts[count % len(texts)]
            line = json.dumps({"id": count, "text": f"{text} ref{count}"}, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode("utf8"))
            count += 1
    return count


def run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One annotate run in this (fresh) process."""
    from spacy_mlbert.annotate.jsonl import annotate_jsonl
    from spacy_mlbert.evaluation import load_pipeline

    nlp = load_pipeline(spec["model"])
    if spec["mode"] == "no-zone":
        nlp.memory_zone = lambda mem=None: contextlib.nullcontext()
    strings = len(nlp.vocab.strings)
    counts = annotate_jsonl(
        nlp, spec["input"], spec["output"], batch_size=spec["batch_size"], progress=False
    )
    return {
        "mode": spec["mode"],
        "records": counts["written"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "strings_added": len(nlp.vocab.strings) - strings,
    }


def _child_env() -> Dict[str, str]:
    """The child imports spacy_mlbert from this checkout, as the parent does
    (an editable install elsewhere, e.g. another worktree's, would win)."""
    env = dict(os.environ)
    root = str(Path(spacy_mlbert.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def measure(args: argparse.Namespace, work: Path) -> List[Dict[str, Any]]:
    texts = read_texts(args.data_dir, args.langs.split(",")) if args.data_dir else ["A short text."]
    rows = []
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        source = work / f"input-{size_text.strip()}.jsonl"
        records = write_input(source, texts, size)
        for mode in args.modes.split(","):
            if mode not in MODES:
                raise SystemExit(f"Unknown mode {mode!r}: choose from {', '.join(MODES)}")
            spec = {
                "model": str(args.model), "input": str(source), "output": str(work / f"out-{mode}.jsonl"),
                "mode": mode, "batch_size": args.batch_size,
            }
            spec_path = work / "child.json"
            spec_path.write_text(json.dumps(spec), encoding="utf8")
            proc = subprocess.run(
                [sys.executable, __file__, "--model", str(args.model), "--child", str(spec_path)],
                capture_output=True, text=True, env=_child_env(),
            )
            if proc.returncode != 0:
                raise RuntimeError(f"child {mode} failed:\n{proc.stderr[-3000:]}")
            row = dict(json.loads(proc.stdout.strip().splitlines()[-1]), size=size_text.strip(), bytes=source.stat().st_size)
            assert row["records"] == records, (row, records)
            log(f"{row['size']} {mode}: peak RSS {row['peak_rss_mb']:.0f} MB, {row['strings_added']} strings added")
            rows.append(row)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child.read_text(encoding="utf8")))))
        return {}
    with contextlib.ExitStack() as stack:
        work = args.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlbert-annotate-mem-")))
        work.mkdir(parents=True, exist_ok=True)
        rows = measure(args, work)
    results = {
        "benchmark": "annotate_memory",
        "created": common.now_iso(),
        "command": common.command_line(),
        "model": str(args.model),
        "batch_size": args.batch_size,
        "rows": rows,
        "versions": common.versions(),
        "git": common.git_state(),
        "machine": common.machine(),
    }
    if args.out:
        write_json_atomic(args.out, results)
        log(f"Wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
