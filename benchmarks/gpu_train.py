"""GPU training throughput: `spacy train --gpu-id 0`, fp32 against mixed precision.

The encoder is random-weight but of real size (``--size base``: the shape of
xlm-roberta-base, 12 layers, width 768, 250,002 word pieces, 278M parameters),
so no weights need to travel to the GPU machine. Its sentencepiece vocabulary
is trained here on the corpus texts; the ids it produces are a small part of
the 250,002 rows, which changes nothing in the cost of a step.

Every mode trains the project's own config (configs/mlbert_xlm_roberta_base.cfg)
through spaCy's ``train`` (what ``spacy train`` runs), on the same texts, with
the same batch size and epochs, then predicts with ``nlp.pipe``. Texts/second
of training are taken from epoch 2 on (epoch 1 holds CUDA warm-up and
allocator growth). ``--size tiny --gpu-id -1`` runs the same path on CPU in
seconds (the CI smoke test).

    python benchmarks/gpu_train.py --gpu-id 0 --out benchmarks/results/gpu_train_h100_batch16.json
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402

# importing the package registers every spacy-mlbert name, also where it runs
# uninstalled (no entry points), as on a GPU machine that gets the source tree
from spacy_mlbert.data import read_records  # noqa: E402

REPO_ROOT = common.REPO_ROOT
CONFIG = REPO_ROOT / "configs" / "mlbert_xlm_roberta_base.cfg"
SIZES = {
    # xlm-roberta-base (transformers' XLMRobertaConfig defaults)
    "base": dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT / "corpus" / "reviews.jsonl")
    parser.add_argument("--aliases", type=Path, default=REPO_ROOT / "corpus" / "label_aliases.json")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--gpu-id", type=int, default=0, help="-1: CPU (smoke test)")
    parser.add_argument("--modes", default="fp32,mixed", help="Subset of fp32,mixed")
    parser.add_argument("--n-train", type=int, default=2000, help="Training texts (the corpus cycled)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="Texts per training batch (the config's is 16)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/mlbert-gpu-bench"))
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def build_random_encoder(texts: Sequence[str], size: str, output_dir: Path) -> Dict[str, Any]:
    """A sentencepiece vocabulary trained on ``texts`` + a random XLM-R of ``size``."""
    import sentencepiece
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = output_dir / "corpus.txt"
    corpus.write_text("\n".join(texts), encoding="utf8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(output_dir / "sp"),
        vocab_size=2000,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (output_dir / "sp.model").rename(output_dir / "sentencepiece.bpe.model")
    tokenizer = XLMRobertaTokenizerFast(vocab_file=str(output_dir / "sentencepiece.bpe.model"), model_max_length=512)
    sizes = dict(SIZES[size])
    sizes.setdefault("vocab_size", len(tokenizer))
    torch.manual_seed(0)
    model = XLMRobertaModel(XLMRobertaConfig(max_position_embeddings=514, **sizes))
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return {"parameters": sum(p.numel() for p in model.parameters()), "tokenizer_pieces": len(tokenizer), **sizes}


def _epoch_timer(stamps: List):
    def before_update(nlp, info: Dict[str, Any]) -> None:
        stamps.append((info["epoch"], time.perf_counter()))

    return before_update


def epoch_seconds(stamps: Sequence) -> List[float]:
    """Seconds per epoch from (epoch, time) stamps taken before every update.

    An epoch runs from its first update to the next epoch's first. The last
    epoch has no next one (and `spacy train` then saves the pipeline, 1.1 GB
    at this size): its k updates are timed from its first stamp to its last,
    scaled by k / (k - 1).
    """
    by_epoch: Dict[int, List[float]] = {}
    for epoch, stamp in stamps:
        by_epoch.setdefault(epoch, []).append(stamp)
    epochs = sorted(by_epoch)
    seconds = [by_epoch[b][0] - by_epoch[a][0] for a, b in zip(epochs, epochs[1:])]
    last = by_epoch[epochs[-1]]
    if len(last) > 1:
        seconds.append((last[-1] - last[0]) * len(last) / (len(last) - 1))
    return seconds


def train_mode(mode: str, args, encoder: Path, train_path: Path, dev_path: Path, n_train: int) -> Dict[str, Any]:
    """One ``spacy train`` run; seconds per epoch from a before_update stamp."""
    from spacy.cli.train import train
    from spacy.util import registry

    stamps: List = []
    name = f"mlbert-bench.gpu_epoch_timer.{mode}"
    registry.callbacks.register(name, func=lambda: _epoch_timer(stamps))
    overrides = {
        "paths.train": str(train_path),
        "paths.dev": str(dev_path),
        "paths.encoder": str(encoder),
        "training.max_epochs": args.epochs,
        "training.batcher.size": args.batch_size,
        "training.eval_frequency": 10**9,  # score once, at step 0: time the updates
        "training.before_update": {"@callbacks": name},
        "components.transformer.model.mixed_precision": mode == "mixed",
    }
    output = args.work_dir / f"model-{mode}"
    start = time.perf_counter()
    train(CONFIG, output, use_gpu=args.gpu_id, overrides=overrides)
    end = time.perf_counter()
    seconds = epoch_seconds(stamps)
    steady = seconds[1:] or seconds
    return {
        "epoch_seconds": [round(s, 3) for s in seconds],
        "train_texts_per_second": round(n_train * len(steady) / sum(steady), 1),
        "train_wall_seconds": round(end - start, 1),
        "model": output / "model-last",
    }


def predict_mode(model_dir: Path, texts: Sequence[str], gpu_id: int) -> Dict[str, Any]:
    import spacy

    nlp = spacy.load(model_dir)
    list(nlp.pipe(texts[:64], batch_size=64))  # warm-up
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=64))
    seconds = time.perf_counter() - start
    return {"infer_texts_per_second": round(len(docs) / seconds, 1), "example_cats": docs[0].cats}


def gpu_info(gpu_id: int) -> Dict[str, Any]:
    import torch

    if gpu_id < 0 or not torch.cuda.is_available():
        return {"gpu": None}
    props = torch.cuda.get_device_properties(gpu_id)
    return {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda}


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from spacy_mlbert.data import records_to_docbin

    if args.gpu_id >= 0:
        import spacy

        spacy.require_gpu(args.gpu_id)
    records, _ = read_records([args.corpus], aliases=args.aliases)
    labels = sorted({label for r in records for label in r.cats})
    train_records = [records[i % len(records)] for i in range(args.n_train)]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    common.log(f"building a random '{args.size}' encoder")
    encoder_dir = args.work_dir / f"encoder-{args.size}"
    encoder = build_random_encoder([r.text for r in records], args.size, encoder_dir)
    train_path = args.work_dir / "train.spacy"
    dev_path = args.work_dir / "dev.spacy"
    records_to_docbin(train_records, "xx", labels=labels).to_disk(train_path)
    records_to_docbin(records[:32], "xx", labels=labels).to_disk(dev_path)
    texts = [r.text for r in train_records]
    results: Dict[str, Any] = {}
    for mode in args.modes.split(","):
        common.log(f"training: {mode}")
        result = train_mode(mode, args, encoder_dir, train_path, dev_path, len(train_records))
        result.update(predict_mode(result.pop("model"), texts, args.gpu_id))
        results[mode] = result
        common.log(f"{mode}: {result['train_texts_per_second']} texts/s training, {result['infer_texts_per_second']} texts/s inference")
    if {"fp32", "mixed"} <= set(results):
        results["mixed_over_fp32"] = {
            key: round(results["mixed"][key] / results["fp32"][key], 2)
            for key in ("train_texts_per_second", "infer_texts_per_second")
        }
    return {
        "command": common.command_line(),
        "date": common.now_iso(),
        "versions": common.versions(),
        "git": common.git_state(),
        "machine": {**common.machine(), **gpu_info(args.gpu_id)},
        "settings": {
            "config": str(CONFIG.relative_to(REPO_ROOT)),
            "size": args.size,
            "encoder": encoder,
            "n_train": len(train_records),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "labels": labels,
        },
        "results": results,
    }


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    out = run(args)
    text = json.dumps(out, indent=2, ensure_ascii=False, default=str)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf8")
    print(text)
    return out


if __name__ == "__main__":
    main()
