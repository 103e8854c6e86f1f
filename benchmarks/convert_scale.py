"""Peak memory and time of ``spacy-mlbert convert`` as the corpus grows.

For each size it writes a synthetic multilingual JSONL of about that many
bytes (short records like BRIGHTER's: 6 emotion labels, 12 languages in 9
scripts, 1 % repeated texts, one language without a ``disgust`` column),
runs ``python -m spacy_mlbert convert FILE OUT --split ...`` in a fresh
process and records the child's peak resident memory (``wait4``'s
ru_maxrss: that process alone) and its wall time, then deletes the corpus
and the outputs. Streaming convert should keep memory flat: bounded by a
shard of DocBins and some 20 bytes a record, not by the corpus.

    python benchmarks/convert_scale.py --sizes 100MB,1GB --work-dir /work/tmp_convert
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import benchlib as common

from spacy_mlbert.atomic import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "convert_scale.json"
LABELS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
# (language, first code point, number of letters, words separated by spaces)
SCRIPTS = [
    ("eng", 0x61, 26, True), ("deu", 0x61, 26, True), ("esp", 0x61, 26, True), ("afr", 0x61, 26, True),
    ("rus", 0x430, 32, True), ("ukr", 0x430, 32, True), ("arq", 0x627, 28, True), ("hin", 0x915, 33, True),
    ("amh", 0x1200, 120, True), ("ell", 0x3B1, 24, True), ("chn", 0x4E00, 3000, False), ("jpn", 0x3041, 80, False),
]
parse_size = common.parse_size


def generate(path: Path, n_bytes: int, seed: int = common.SEED) -> int:
    """Write a synthetic corpus of at least ``n_bytes``.

    RETURNS (int): the number of records.
    """
    rng = random.Random(seed)
    vocab = {}
    for lang, start, letters, _ in SCRIPTS:
        alphabet = [chr(start + i) for i in range(letters)]
        vocab[lang] = ["".join(rng.choices(alphabet, k=rng.randint(2, 8))) for _ in range(2000)]
    recent: List[str] = []
    written = count = 0
    with path.open("w", encoding="utf8") as file_:
        while written < n_bytes:
            lang, _, _, spaced = SCRIPTS[count % len(SCRIPTS)]
            if recent and rng.random() < 0.01:
                text = rng.choice(recent)  # a repeated text, as real corpora have
            else:
                words = rng.choices(vocab[lang], k=rng.randint(4, 30 if spaced else 12))
                text = (" " if spaced else "").join(words) + ("." if spaced else "。")
                recent = (recent + [text])[-1000:]
            record: Dict[str, Any] = {"id": f"{lang}-{count}", "lang": lang, "text": text}
            if lang == "eng":  # BRIGHTER's English has no disgust column
                record["cats"] = {label: int(rng.random() < 0.3) for label in LABELS if label != "disgust"}
            else:
                record["labels"] = [label for label in LABELS if rng.random() < 0.25]
            line = json.dumps(record, ensure_ascii=False) + "\n"
            file_.write(line)
            written += len(line.encode("utf8"))
            count += 1
    return count


def measure(command: Sequence[str]) -> Dict[str, Any]:
    """Run a command; RETURNS its peak RSS (MB), wall seconds and exit status."""
    start = time.perf_counter()
    # from the checkout's root: `-m` then imports this checkout's spacy_mlbert
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=common.REPO_ROOT)
    output = proc.stdout.read() if proc.stdout is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kB on Linux
        "wall_seconds": round(seconds, 2),
        "returncode": proc.returncode,
        "output_tail": output.decode("utf8", errors="replace")[-2000:],
    }


def describe_outputs(out: Path) -> Dict[str, Any]:
    """RETURNS (Dict[str, Any]): per output, file or folder, shards, docs, bytes."""
    report = json.loads((out / "convert-report.json").read_text(encoding="utf8"))
    found: Dict[str, Any] = {"converted": report["converted"], "duplicates_removed": report["duplicates_removed"]}
    for path in sorted(out.glob("*.spacy")):
        files = sorted(path.glob("*.spacy")) if path.is_dir() else [path]
        found[path.stem] = {
            "folder": path.is_dir(),
            "files": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "texts": json.loads((out / f"{path.stem}.stats.json").read_text(encoding="utf8"))["total"]["texts"],
        }
    return found


def run_size(size: str, work: Path, args: argparse.Namespace) -> Dict[str, Any]:
    corpus = work / f"corpus-{size}.jsonl"
    out = work / f"out-{size}"
    try:
        common.log(f"{size}: generating {corpus}")
        records = generate(corpus, parse_size(size), seed=args.seed)
        command = [sys.executable, "-m", "spacy_mlbert", "convert", str(corpus), str(out), "--quiet"]
        command += ["--split", args.split, "--shard-size", str(args.shard_size)]
        common.log(f"{size}: {records} records, {corpus.stat().st_size / 1e6:.0f} MB; converting")
        point = {"size": size, "input_bytes": corpus.stat().st_size, "records": records, **measure(command)}
        if point["returncode"] != 0:
            raise RuntimeError(f"convert failed on {size}:\n{point['output_tail']}")
        point["outputs"] = describe_outputs(out)
        common.log(f"{size}: peak RSS {point['peak_rss_mb']:.0f} MB, {point['wall_seconds']:.0f} s")
        return point
    finally:
        corpus.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100MB,1GB", help="Corpus sizes, run in this order, e.g. 100MB,300MB,1GB")
    parser.add_argument("--work-dir", type=Path, help="Where the corpora go (default: a temporary folder)")
    parser.add_argument("--split", default="0.8,0.1,0.1", help="convert's --split")
    parser.add_argument("--shard-size", type=int, default=10_000, help="convert's --shard-size")
    parser.add_argument("--seed", type=int, default=common.SEED)
    parser.add_argument("--out", type=Path, default=RESULTS, help="The results file")
    args = parser.parse_args(argv)
    sizes = [size.strip() for size in args.sizes.split(",") if size.strip()]
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Any] = {
        "benchmark": "convert_scale",
        "date": common.now_iso(),
        "command": common.command_line(),
        "settings": {"split": args.split, "shard_size": args.shard_size, "seed": args.seed},
        "points": [],
        "versions": common.versions(),
        "git": common.git_state(),
        "machine": common.machine(),
    }
    with tempfile.TemporaryDirectory(prefix="mlbert-convert-", dir=args.work_dir) as tmp:
        for size in sizes:
            results["points"].append(run_size(size, Path(tmp).resolve(), args))
            _summarise(results)
            # after every size: a run cut short still leaves its figures
            write_json_atomic(args.out, results)
    common.log(f"wrote {args.out}")
    return results


def _summarise(results: Dict[str, Any]) -> None:
    points = results["points"]
    smallest, largest = min(points, key=lambda p: p["input_bytes"]), max(points, key=lambda p: p["input_bytes"])
    results["rss_ratio_largest_to_smallest"] = round(largest["peak_rss_mb"] / smallest["peak_rss_mb"], 3)
    results["seconds_per_mb"] = {p["size"]: round(p["wall_seconds"] / (p["input_bytes"] / 1e6), 3) for p in points}


if __name__ == "__main__":
    main()
