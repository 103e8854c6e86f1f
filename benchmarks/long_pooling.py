"""How much v1's whole-document mean leans toward the overlaps of strided
windows, and what v2 (each wordpiece counted once) changes, on long
documents of several scripts with the shipped config's windows.

For each document: windows, rows v1 averages (every row of every window),
rows v2 counts (each wordpiece once, special tokens once), the share of v1's
rows that are repeats, and the cosine between the v1 and v2 document vectors
of the same encoder output. Nothing is timed.

    python benchmarks/long_pooling.py --data-dir ../shared/data/brighter/dev \
        --out benchmarks/results/long_pooling.json
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402
from benchlib import log  # noqa: E402
from speed import build_pipeline, make_length_texts, read_texts  # noqa: E402

from spacy_mlbert.atomic import write_json_atomic  # noqa: E402
from spacy_mlbert.layers.wordpiece_pooling import counted_rows  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="SemEval CSVs (lang.csv) to build documents from")
    parser.add_argument("--langs", default="eng,rus,chn,hin,arq")
    parser.add_argument("--lengths", default="1024,2048,4835", help="Document lengths in wordpieces")
    parser.add_argument("--encoder", type=Path, default=common.DEFAULT_ENCODER)
    parser.add_argument("--config", type=Path, default=common.PROJECT_CONFIG)
    parser.add_argument("--model", type=Path, help="A trained pipeline (default: initialise one from --config)")
    parser.add_argument("--out", type=Path, default=Path("long_pooling.json"))
    return parser.parse_args(argv)


def document_point(doc, lang: str, length: int) -> Dict[str, Any]:
    trf_data = doc._.trf_data
    hidden = numpy.asarray(trf_data.model_output.last_hidden_state)  # (windows, wordpieces, width)
    mask = numpy.asarray(trf_data.wordpieces.attention_mask) > 0
    counted = counted_rows(trf_data)
    v1 = hidden[mask].mean(axis=0)
    v2 = hidden[counted].mean(axis=0)
    cosine = float(v1 @ v2 / (numpy.linalg.norm(v1) * numpy.linalg.norm(v2)))
    return {
        "lang": lang,
        "target_wordpieces": length,
        "windows": int(mask.shape[0]),
        "rows_v1": int(mask.sum()),
        "rows_v2": int(counted.sum()),
        "repeated_share_of_v1_rows": float(1 - counted.sum() / mask.sum()),
        "cosine_v1_v2": cosine,
        "relative_distance_v1_v2": float(numpy.linalg.norm(v1 - v2) / numpy.linalg.norm(v2)),
    }


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    labels = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    nlp = build_pipeline(argparse.Namespace(model=args.model, config=args.config, encoder=args.encoder), labels)
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    points: List[Dict[str, Any]] = []
    for lang in [x.strip() for x in args.langs.split(",") if x.strip()]:
        pool = read_texts(args.data_dir, [lang])
        for length in [int(x) for x in args.lengths.split(",") if x.strip()]:
            text = make_length_texts(tokenizer, pool, length, 1)[0]
            point = document_point(nlp(text), lang, length)
            points.append(point)
            log(f"{lang} {length}: {point}")
    results = {
        "benchmark": "long_pooling",
        "command": common.command_line(),
        "date": common.now_iso(),
        "settings": {"config": str(args.config), "encoder": str(args.encoder), "model": str(args.model) if args.model else "initialised"},
        "get_spans": dict(nlp.config["components"]["transformer"]["model"]["get_spans"]),
        "versions": common.versions(),
        "git": common.git_state(),
        "documents": points,
    }
    write_json_atomic(args.out, results)
    print(report(results))
    return results


def report(results: Dict[str, Any]) -> str:
    lines = ["| lang | wordpieces | windows | rows v1 | rows v2 | repeated share of v1's rows | cosine v1, v2 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for p in results["documents"]:
        lines.append(
            f"| {p['lang']} | {p['target_wordpieces']} | {p['windows']} | {p['rows_v1']} | {p['rows_v2']} | {p['repeated_share_of_v1_rows']:.3f} | {p['cosine_v1_v2']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
