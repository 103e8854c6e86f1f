"""Speed benchmark: the spaCy pipeline against the raw transformers path.

Same encoder, same texts, same batch size and max length, in one process:

- inference: docs/s of ``nlp.pipe`` over a (trained or freshly initialised)
  transformer + mlbert_textcat pipeline vs the raw forward pass (Hugging Face
  tokeniser + the pipeline's own encoder module + the same pooling and output
  layer); ratio spaCy / raw, target >= 0.95. The two paths' probabilities are
  compared as a check that they compute the same thing;
- training: seconds per epoch of ``spacy train`` with the project's config vs
  a plain PyTorch loop doing the same work (mean pooling, frozen word
  embeddings, AdamW with weight decay, gradient clipping 1.0, batch 16, max
  length 128); ratio spaCy / PyTorch, target <= 1.10;
- peak RSS of each of the four, each in its own subprocess;
- time vs document length (64 -> 2,048 wordpieces; both paths cut long
  documents into windows) and vs corpus size;
- cost (``--only cost``): ``nlp.pipe`` of the pipeline in fp32 and int8
  (``python -m spacy_mlbert quantize``), stock ``textcat_multilabel`` on the
  same transformer, and the strongest raw path (all texts sorted by
  wordpiece length, then batched; batch 32 and 64, the faster is the
  anchor), interleaved, on --cost-texts texts and by document length; peak
  and steady RSS of each in a fresh process;
- load (``--only load``): memory only, no timing: load peak, loaded, and
  peak and steady after predicting --cost-texts texts, of fp32, both kinds
  of ``quantize`` (int8, int8-embeddings), stock and the raw path, each in
  a fresh process, with each pipeline's size on disk;
- batching (``--only batching``): fp32 ``nlp.pipe`` (--pipe-batch-size) with
  each --batch-items value of the transformer's ``max_batch_items`` (or
  each --batch-wordpieces value of the encoder's ``max_batch_wordpieces``),
  interleaved with the sorted raw path, and the padded wordpieces each
  feeds the encoder.

Repeated measurements are interleaved (spaCy, raw, spaCy, raw, ...) and the
median is reported, so that load from other work on a shared machine hits
both paths alike.

    python benchmarks/speed.py --data-dir ../shared/data/brighter/dev --out benchmarks/results/speed_all_sections.json
    python benchmarks/speed.py --data-dir ../shared/data/brighter/dev --quick
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as common  # noqa: E402
from benchlib import log  # noqa: E402

SECTIONS = ("infer", "train", "rss", "length", "size", "cost", "load", "batching")
TRAIN_BATCH_SIZE = 16
# the e5 / XLM-R window of the project's config: 128 with stride 96
WINDOW = 128
STRIDE = 96


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="Folder of SemEval <lang>.csv files (texts only are used)")
    parser.add_argument("--langs", default="eng,rus,chn,hin,arq")
    parser.add_argument("--encoder", type=Path, default=common.DEFAULT_ENCODER)
    parser.add_argument("--config", type=Path, default=common.PROJECT_CONFIG)
    parser.add_argument("--model", type=Path, help="A trained pipeline (default: initialise one from --config; the speed is the same)")
    parser.add_argument("--n-texts", type=int, default=256, help="Texts for the inference comparison")
    parser.add_argument("--batch-size", type=int, default=64, help="Texts per batch when predicting (both paths)")
    parser.add_argument("--max-length", type=int, default=128, help="Wordpieces per window / truncation length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-texts", type=int, default=160)
    parser.add_argument("--train-epochs", type=int, default=2, help="Epoch 1 is warm-up; later epochs are compared")
    parser.add_argument("--train-rounds", type=int, default=2, help="Alternating runs of spacy train with mlbert_textcat and with stock textcat_multilabel")
    parser.add_argument("--lengths", default="64,128,256,512,1024,2048", help="Document lengths in wordpieces")
    parser.add_argument("--length-wordpieces", type=int, default=8192, help="Wordpieces per length point (docs = this / length, at least 2)")
    parser.add_argument("--sizes", default="32,128,512", help="Corpus sizes (texts) for the size scan")
    parser.add_argument("--cost-texts", type=int, default=1000, help="Texts of the cost section")
    parser.add_argument(
        "--pipe-batch-size", type=int, default=0,
        help="Cost section: nlp.pipe's batch_size, the buffer that spacy-transformers sorts by length (0: --batch-size)",
    )
    parser.add_argument(
        "--max-batch-items", type=int, default=0,
        help="Set the transformer component's max_batch_items (spaCy tokens per encoder call of nlp.pipe) of the pipelines timed (0: as saved)",
    )
    parser.add_argument(
        "--max-batch-wordpieces", type=int, default=-1,
        help="Set the encoder's max_batch_wordpieces (length groups) of the pipelines timed, in their config too (-1: as saved)",
    )
    parser.add_argument("--batch-items", default="4096,16384,65536", help="Batching section: the max_batch_items values compared")
    parser.add_argument(
        "--batch-wordpieces", default="",
        help="Batching section: instead, the encoder's max_batch_wordpieces values compared (length groups), at the pipeline's max_batch_items",
    )
    parser.add_argument("--cost-lengths", default="64,256,1024,2048", help="Document lengths (wordpieces) of the cost section")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"Sections to run: {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="A few texts and points: checks that everything runs")
    parser.add_argument("--out", type=Path, default=Path("speed.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_texts = min(args.n_texts, 16)
        args.repeats = 1
        args.train_texts = min(args.train_texts, 32)
        args.train_rounds = 1
        args.lengths = "64,256"
        args.length_wordpieces = 512
        args.sizes = "8,16"
        args.cost_texts = min(args.cost_texts, 24)
        args.cost_lengths = "64,256"
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown {unknown}")
    return args


# --- texts and the two paths --------------------------------------------------


def read_texts(data_dir: Path, langs: Sequence[str]) -> List[str]:
    """Texts of the CSVs, languages interleaved (eng, rus, ..., eng, rus, ...)
    so that any prefix holds every language."""
    per_lang = []
    for lang in langs:
        records, _ = common.read_records(Path(data_dir) / f"{lang}.csv", fmt="semeval")
        per_lang.append([r.text for r in common.first_n_shuffled(records, 0)])
    texts = []
    for i in range(max(len(t) for t in per_lang)):
        texts.extend(t[i] for t in per_lang if i < len(t))
    return texts


def cycle(texts: Sequence[str], n: int) -> List[str]:
    return [texts[i % len(texts)] for i in range(n)]


def build_pipeline(args: argparse.Namespace, labels: Sequence[str]):
    """The pipeline to time: --model, or the project's config initialised on
    the encoder (random output layer: the same computation as a trained one)."""
    import spacy
    from spacy import util
    from spacy.training import Example

    if args.model is not None:
        return spacy.load(args.model)
    config = util.load_config(args.config, overrides={"paths.encoder": str(args.encoder)}, interpolate=True)
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc("init"), {"cats": {label: 0.0 for label in labels}})]
    nlp.initialize(lambda: examples)
    return nlp


def raw_window(config, max_length: int, tokenizer=None) -> Tuple[int, int]:
    """(wordpieces per window without specials, step) for the raw path's long
    documents, following the pipeline's span getter: wordpiece windows are
    copied as they are; spaCy-token windows (spacy-transformers'
    strided_spans, e.g. 128/96 tokens) become max_length wordpieces with the
    same stride share (a token is one or more wordpieces, so the raw windows
    are at most as long as the pipeline's)."""
    getter = config["components"]["transformer"]["model"]["get_spans"]
    if "wordpiece" in getter.get("@span_getters", ""):
        window, stride = int(getter["window"]), int(getter["stride"])
        # capped as the span getter caps it: what the encoder takes
        limit = getattr(tokenizer, "model_max_length", None)
        if limit is not None and limit < 10**6:
            window = min(window, limit - 2)
        return window, min(stride, window)
    window = int(getter.get("window", WINDOW))
    stride = int(getter.get("stride", STRIDE))
    body = max_length - 2  # room for the two special tokens
    return body, max(1, body * stride // window)


class RawPath:
    """Tokenise + encoder + head with the pipeline's own modules and weights."""

    def __init__(self, nlp, max_length: int) -> None:
        from spacy_mlbert.evaluation import find_textcat

        _, textcat = find_textcat(nlp)
        trf = nlp.get_pipe("transformer").model
        self.tokenizer = trf.tokenizer
        self.encoder = trf.transformer
        layer = textcat.model.get_ref("output_layer")
        self.W = numpy.asarray(layer.get_param("W"))  # (n_labels, width)
        self.b = numpy.asarray(layer.get_param("b"))
        # what the classifier puts between pooling and output layer (v2: a
        # layer norm; dropout is the identity when predicting)
        self.between = textcat.model.layers[1:-1]
        encoder_layer = textcat.model.get_ref("tok2vec").layers[-1]
        self.pooling = encoder_layer.attrs.get("pooling", "mean")
        self.max_length = max_length
        self.window = raw_window(nlp.config, max_length, self.tokenizer)

    def __call__(self, texts: Sequence[str], batch_size: int, max_items: int = 0) -> numpy.ndarray:
        """Probabilities of ``texts``, ``batch_size`` texts per forward pass.

        max_items (int): 0 pads each batch to its longest text. Otherwise each
            batch is sorted by length and cut into sub-batches of at most this
            many padded wordpieces, as spacy-transformers does with its
            ``max_batch_items`` (less padding, smaller attention matrices).
        """
        import torch

        # thinc's PyTorch shim leaves the module in train mode after each
        # predict (dropout on): switch it off for every raw call
        self.encoder.eval()
        out = numpy.zeros((len(texts), self.W.shape[0]), dtype="f")
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                chunk = list(texts[i : i + batch_size])
                if not max_items:
                    groups = [list(range(len(chunk)))]
                    encoded = None
                else:
                    encoded = self.tokenizer(chunk, truncation=True, max_length=self.max_length)
                    groups = _length_groups([len(ids) for ids in encoded["input_ids"]], max_items)
                for group in groups:
                    if encoded is None:
                        inputs = self.tokenizer(
                            [chunk[j] for j in group], padding=True, truncation=True,
                            max_length=self.max_length, return_tensors="pt",
                        )
                    else:
                        features = [{k: encoded[k][j] for k in ("input_ids", "attention_mask")} for j in group]
                        inputs = self.tokenizer.pad(features, padding=True, return_tensors="pt")
                    hidden = self.encoder(**inputs).last_hidden_state
                    out[[i + j for j in group]] = self._head(hidden, inputs["attention_mask"])
        return out

    def _head(self, hidden, mask) -> numpy.ndarray:
        if self.pooling == "cls":
            pooled = hidden[:, 0].numpy()
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = ((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)).numpy()
        return self._output(pooled)

    def _output(self, pooled: numpy.ndarray) -> numpy.ndarray:
        for layer in self.between:
            pooled = layer.predict(pooled)
        logits = pooled @ self.W.T + self.b
        return 1.0 / (1.0 + numpy.exp(-logits))

    def windows(self, texts: Sequence[str], batch_size: int) -> Tuple[numpy.ndarray, int]:
        """Long documents: windows of max_length wordpieces with stride
        STRIDE/WINDOW of it, mean-pooled over every window's wordpieces, as the
        pipeline pools its strided windows. RETURNS (probs, windows)."""
        import torch

        body, step = self.window
        cls_id, sep_id, pad_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        chunks, owner = [], []
        for d, text in enumerate(texts):
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            start = 0
            while True:
                chunks.append([cls_id] + ids[start : start + body] + [sep_id])
                owner.append(d)
                if start + body >= len(ids):
                    break
                start += step
        self.encoder.eval()
        sums = numpy.zeros((len(texts), self.encoder.config.hidden_size), dtype="f")
        counts = numpy.zeros(len(texts), dtype="f")
        with torch.inference_mode():
            for i in range(0, len(chunks), batch_size):
                part = chunks[i : i + batch_size]
                width = max(len(c) for c in part)
                ids = torch.tensor([c + [pad_id] * (width - len(c)) for c in part])
                mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in part])
                hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                summed = (hidden * mask.unsqueeze(-1)).sum(1).numpy()
                for row, d in enumerate(owner[i : i + batch_size]):
                    sums[d] += summed[row]
                    counts[d] += float(mask[row].sum())
        pooled = sums / numpy.maximum(counts, 1.0)[:, None]
        return self._output(pooled), len(chunks)


def _length_groups(lengths: Sequence[int], max_items: int) -> List[List[int]]:
    """Indices sorted by length, cut where (longest * count) would pass max_items."""
    groups: List[List[int]] = []
    current: List[int] = []
    for length, index in sorted((n, i) for i, n in enumerate(lengths)):
        if current and length * (len(current) + 1) > max_items:
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    return groups


def spacy_probs(nlp, texts: Sequence[str], batch_size: int, labels: Sequence[str]) -> numpy.ndarray:
    return common.pipe_probs(nlp, texts, labels, batch_size=batch_size)


def interleaved(fns: Dict[str, Callable[[], Any]], repeats: int, cpu: Optional[Dict[str, List[float]]] = None) -> Dict[str, List[float]]:
    """Wall seconds of each function per repeat, run in turn: A, B, A, B, ...

    cpu (Optional[Dict[str, List[float]]]): Filled with the process CPU
        seconds of each call: on a shared machine wall time also counts the
        time other work held the cores, CPU time less so.
    """
    seconds: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            seconds[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - start_cpu)
    return seconds


# --- sections -----------------------------------------------------------------


def section_infer(nlp, raw: RawPath, texts: List[str], labels: List[str], args) -> Dict[str, Any]:
    batch = args.batch_size
    # warm-up: first calls allocate and load kernels
    spacy_probs(nlp, texts[:batch], batch, labels)
    raw(texts[:batch], batch)
    max_items = nlp.get_pipe("transformer").cfg["max_batch_items"]
    p_spacy = spacy_probs(nlp, texts, batch, labels)
    p_raw = raw(texts, batch)
    p_sorted = raw(texts, batch, max_items)
    cpu: Dict[str, List[float]] = {}
    seconds = interleaved(
        {
            "spacy": lambda: spacy_probs(nlp, texts, batch, labels),
            "raw": lambda: raw(texts, batch),
            "raw_sorted": lambda: raw(texts, batch, max_items),
        },
        args.repeats,
        cpu,
    )
    med = {name: statistics.median(v) for name, v in seconds.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    docs_s = {name: len(texts) / s for name, s in med.items()}
    return {
        "n_texts": len(texts),
        "batch_size": batch,
        "max_length": args.max_length,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "docs_per_second": docs_s,
        "ratio_spacy_over_raw": docs_s["spacy"] / docs_s["raw"],
        # the stricter baseline: the raw path with spacy-transformers' own
        # length-sorted sub-batches (max_batch_items padded wordpieces)
        "ratio_spacy_over_raw_sorted": docs_s["spacy"] / docs_s["raw_sorted"],
        "max_batch_items": max_items,
        "ratio_cpu_time_raw_over_spacy": med_cpu["raw"] / med_cpu["spacy"],
        "ratio_cpu_time_raw_sorted_over_spacy": med_cpu["raw_sorted"] / med_cpu["spacy"],
        "target": ">= 0.95",
        "max_abs_prob_difference": float(max(numpy.abs(p_spacy - p_raw).max(), numpy.abs(p_spacy - p_sorted).max())),
    }


class EncoderWork:
    """Counts what the encoder is fed in training forward passes: rows and
    wordpieces, padded and real, with a time stamp per call.

    The two training paths shuffle differently, so their batches mix short
    and long texts differently and pad to different lengths; seconds per
    epoch then compare different amounts of encoder work. Counting it lets
    the report say how much of a gap is padding. Patches the encoder class's
    ``forward`` (both paths build the same class) for the ``with`` block.
    """

    def __init__(self, encoder: Path) -> None:
        from transformers import AutoConfig, AutoModel

        self.cls = AutoModel._model_mapping[type(AutoConfig.from_pretrained(encoder))]
        self.calls: List[Tuple[float, int, int, int]] = []

    def __enter__(self) -> "EncoderWork":
        import torch

        original = self.original = self.cls.forward
        calls = self.calls

        def forward(module, input_ids=None, attention_mask=None, *args, **kwargs):
            if torch.is_grad_enabled() and input_ids is not None:
                real = int(attention_mask.sum()) if attention_mask is not None else input_ids.numel()
                calls.append((time.perf_counter(), input_ids.shape[0], input_ids.numel(), real))
            return original(module, input_ids, attention_mask, *args, **kwargs)

        self.cls.forward = forward
        return self

    def __exit__(self, *exc) -> None:
        self.cls.forward = self.original

    def per_epoch(self, bounds: Sequence[float]) -> List[Dict[str, int]]:
        """Rows, padded and real wordpieces between consecutive time stamps."""
        epochs = []
        for start, end in zip(bounds, bounds[1:]):
            inside = [c for c in self.calls if start <= c[0] < end]
            epochs.append({
                "rows": sum(c[1] for c in inside),
                "padded_wordpieces": sum(c[2] for c in inside),
                "real_wordpieces": sum(c[3] for c in inside),
            })
        return epochs


def _epoch_timer_factory(store: List[Tuple[int, float]]):
    def before_update(nlp, info: Dict[str, Any]) -> None:
        store.append((info["epoch"], time.perf_counter(), time.process_time()))

    return before_update


def spacy_epoch_seconds(
    texts: List[str], labels: List[str], args, work: Path, cpu: Optional[List[float]] = None, *,
    config: Optional[Path] = None, bounds_out: Optional[List[float]] = None,
) -> Tuple[List[float], float]:
    """Per-epoch seconds of ``spacy train`` with the project's config, or
    ``config`` (no checkpoint saving; the held-out score runs once, at step 0,
    on 8 texts)."""
    from spacy.cli.train import train
    from spacy.util import registry

    stamps: List[Tuple[int, float, float]] = []
    name = f"mlbert-bench.epoch_timer.{id(stamps)}"
    registry.callbacks.register(name, func=lambda: _epoch_timer_factory(stamps))
    train_path, dev_path = _write_train_docbins(texts, labels, work)
    overrides = {
        "paths.train": str(train_path),
        "paths.dev": str(dev_path),
        "paths.encoder": str(args.encoder),
        "training.max_epochs": args.train_epochs,
        "training.eval_frequency": 10**9,
        "training.before_update": {"@callbacks": name},
        "training.logger.progress_bar": False,
    }
    start = time.perf_counter()
    train(config or args.config, None, use_gpu=-1, overrides=overrides)
    end, end_cpu = time.perf_counter(), time.process_time()
    firsts: Dict[int, Tuple[float, float]] = {}
    for epoch, stamp, stamp_cpu in stamps:
        firsts.setdefault(epoch, (stamp, stamp_cpu))
    epochs = sorted(firsts)
    bounds = [firsts[e] for e in epochs] + [(end, end_cpu)]
    if cpu is not None:
        cpu.extend(bounds[i + 1][1] - bounds[i][1] for i in range(len(epochs)))
    if bounds_out is not None:
        bounds_out.extend(b[0] for b in bounds)
    return [bounds[i + 1][0] - bounds[i][0] for i in range(len(epochs))], end - start


def _write_train_docbins(texts: List[str], labels: List[str], work: Path) -> Tuple[Path, Path]:
    from spacy_mlbert.data import Record

    rng = numpy.random.RandomState(0)
    records = [
        Record(id=str(i), lang="xx", text=t, cats={label: float(rng.rand() < 0.3) for label in labels})
        for i, t in enumerate(texts)
    ]
    train_path = common.write_docbin(records, labels, work / "speed-train.spacy")
    dev_path = common.write_docbin(records[:8], labels, work / "speed-dev.spacy")
    return train_path, dev_path


def torch_epoch_seconds(
    texts: List[str], labels: List[str], args, cpu: Optional[List[float]] = None, *, bounds_out: Optional[List[float]] = None
) -> Tuple[List[float], float]:
    """The same work as the spaCy run, in a plain PyTorch loop."""
    rng = numpy.random.RandomState(0)
    y = (rng.rand(len(texts), len(labels)) < 0.3).astype("f")
    epochs: List[float] = []
    start = time.perf_counter()
    common.train_torch(
        texts, y, args.encoder, epochs=args.train_epochs, batch_size=TRAIN_BATCH_SIZE, lr=1e-4,
        max_length=args.max_length, pooling="mean", freeze_embeddings=True, grad_clip=1.0,
        epoch_seconds=epochs, epoch_cpu_seconds=cpu, epoch_ends=bounds_out,
    )
    return epochs, time.perf_counter() - start


def _stock_config_file(args, work: Path) -> Path:
    """The project's config with stock ``textcat_multilabel`` in place of
    ``mlbert_textcat`` (the quality benchmark's ``stock`` system)."""
    from spacy.util import load_config

    path = work / "stock.cfg"
    common.stock_config(load_config(args.config)).to_disk(path)
    return path


def section_train(texts: List[str], labels: List[str], args, work: Path) -> Dict[str, Any]:
    """``spacy train`` with mlbert_textcat, the plain PyTorch loop, and
    ``spacy train`` with stock textcat_multilabel over the same transformer,
    on the same texts, one after the other for ``--train-rounds`` rounds.
    Each run's encoder work is counted (EncoderWork): the two paths shuffle
    differently, so their batches carry different amounts of padding."""
    texts = cycle(texts, args.train_texts)
    stock_config = _stock_config_file(args, work)
    rounds = max(1, args.train_rounds)
    systems = ("spacy", "torch", "stock")
    cpu: Dict[str, List[float]] = {name: [] for name in systems}
    wall: Dict[str, List[float]] = {name: [] for name in systems}
    totals: Dict[str, List[float]] = {name: [] for name in systems}
    work_done: Dict[str, List[Dict[str, int]]] = {name: [] for name in systems}
    # epoch 1 pays for warm-up (and spaCy's one evaluation): compare the rest
    steady = slice(1, None) if args.train_epochs > 1 else slice(0, None)

    def keep(name: str, epochs: List[float], epoch_cpu: List[float], total: float, counter: EncoderWork, bounds: List[float]) -> None:
        wall[name].extend(epochs[steady])
        cpu[name].extend(epoch_cpu[steady])
        totals[name].append(total)
        work_done[name].extend(counter.per_epoch(bounds)[steady])
        common.free_memory()

    # all three in every round, so that a change in the machine's load
    # hits each of them alike
    for _ in range(rounds):
        for name in systems:
            epoch_cpu: List[float] = []
            bounds: List[float] = []
            with EncoderWork(args.encoder) as counter:
                if name == "torch":
                    epochs, total = torch_epoch_seconds(texts, labels, args, epoch_cpu, bounds_out=bounds)
                else:
                    config = stock_config if name == "stock" else None
                    epochs, total = spacy_epoch_seconds(texts, labels, args, work, epoch_cpu, config=config, bounds_out=bounds)
            keep(name, epochs, epoch_cpu, total, counter, bounds)
    med = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    # seconds per 1,000 padded wordpieces fed to the encoder, epoch by epoch:
    # the ratio with the batches' padding taken out
    per_kwp = {
        name: statistics.median(
            seconds / (done["padded_wordpieces"] / 1000) for seconds, done in zip(wall[name], work_done[name])
        )
        for name in systems
    }
    return {
        "n_texts": len(texts),
        "batch_size": TRAIN_BATCH_SIZE,
        "epochs": args.train_epochs,
        "rounds": rounds,
        "compared_epochs": "2..n of every run" if args.train_epochs > 1 else "1",
        "epoch_seconds": wall,
        "epoch_cpu_seconds": cpu,
        "total_seconds": totals,
        "spacy_seconds_per_epoch": med["spacy"],
        "torch_seconds_per_epoch": med["torch"],
        "stock_seconds_per_epoch": med["stock"],
        "ratio_spacy_over_torch": med["spacy"] / med["torch"],
        "ratio_cpu_time_spacy_over_torch": med_cpu["spacy"] / med_cpu["torch"],
        "ratio_spacy_over_stock": med["spacy"] / med["stock"],
        "ratio_cpu_time_spacy_over_stock": med_cpu["spacy"] / med_cpu["stock"],
        "encoder_work_per_epoch": work_done,
        "seconds_per_1k_padded_wordpieces": per_kwp,
        "ratio_per_padded_wordpiece_spacy_over_torch": per_kwp["spacy"] / per_kwp["torch"],
        "target": "<= 1.10 (over the PyTorch loop); <= 1.00 (over stock textcat_multilabel)",
    }


def make_length_texts(tokenizer, pool: Sequence[str], length: int, n: int) -> List[str]:
    """``n`` texts of about ``length`` wordpieces (specials excluded), each
    built from consecutive texts of ``pool`` (so each text is different)."""
    texts = []
    offset = 0
    for _ in range(n):
        words: List[str] = []
        count = 0
        while count < length:
            piece = pool[offset % len(pool)]
            offset += 1
            words.extend(piece.split())
            count += len(tokenizer(piece, add_special_tokens=False)["input_ids"])
        # trim whole words until it fits
        while len(words) > 1 and len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) > length:
            words = words[: max(1, int(len(words) * 0.97))]
        texts.append(" ".join(words))
    return texts


def section_length(nlp, raw: RawPath, texts: List[str], labels: List[str], args) -> List[Dict[str, Any]]:
    points = []
    for length in [int(x) for x in args.lengths.split(",") if x.strip()]:
        n = max(2, args.length_wordpieces // length)
        docs = make_length_texts(raw.tokenizer, texts, length, n)
        wordpieces = [len(raw.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in docs]
        batch = args.batch_size
        spacy_probs(nlp, docs[:2], batch, labels)  # warm-up for this shape
        n_windows_raw = raw.windows(docs[:1], batch)[1]
        spacy_docs = list(nlp.pipe(docs[:1]))
        n_windows_spacy = int(spacy_docs[0]._.trf_data.wordpieces.input_ids.shape[0])
        wordpieces_spacy = int(sum(spacy_docs[0]._.trf_data.wordpieces.lengths))
        seconds = interleaved(
            {"spacy": lambda: spacy_probs(nlp, docs, batch, labels), "raw": lambda: raw.windows(docs, batch)},
            args.repeats,
        )
        med = {name: statistics.median(v) for name, v in seconds.items()}
        point = {
            "length": length,
            "n_docs": n,
            "mean_wordpieces": float(numpy.mean(wordpieces)),
            # spaCy's windows are 128 spaCy tokens (more wordpieces), the raw ones 128 wordpieces
            "windows_first_doc": {"spacy": n_windows_spacy, "raw": n_windows_raw},
            "spacy_window_wordpieces_first_doc": wordpieces_spacy,
            "seconds": seconds,
            "docs_per_second": {k: n / v for k, v in med.items()},
            "wordpieces_per_second": {k: sum(wordpieces) / v for k, v in med.items()},
        }
        point["ratio_spacy_over_raw"] = point["docs_per_second"]["spacy"] / point["docs_per_second"]["raw"]
        points.append(point)
        log(f"length {length}: spaCy {point['docs_per_second']['spacy']:.1f} docs/s, raw {point['docs_per_second']['raw']:.1f} docs/s")
    return points


def section_size(nlp, raw: RawPath, texts: List[str], labels: List[str], args) -> List[Dict[str, Any]]:
    points = []
    for size in [int(x) for x in args.sizes.split(",") if x.strip()]:
        docs = cycle(texts, size)
        seconds = interleaved(
            {"spacy": lambda: spacy_probs(nlp, docs, args.batch_size, labels), "raw": lambda: raw(docs, args.batch_size)},
            1 if size > 256 else args.repeats,
        )
        med = {name: statistics.median(v) for name, v in seconds.items()}
        point = {"n_texts": size, "seconds": seconds, "docs_per_second": {k: size / v for k, v in med.items()}}
        point["ratio_spacy_over_raw"] = point["docs_per_second"]["spacy"] / point["docs_per_second"]["raw"]
        points.append(point)
        log(f"size {size}: spaCy {point['docs_per_second']['spacy']:.1f} docs/s, raw {point['docs_per_second']['raw']:.1f} docs/s")
    return points


# --- peak memory (one subprocess each) ----------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM (Linux) belongs to the process's current address space, which
    execve replaces: it counts only this program. ru_maxrss is kept across
    execve, so a child started from a big parent would report the parent's
    size; it is only the fallback where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(mode: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measured phase in this (fresh) process; prints its peak RSS."""
    import spacy

    texts, labels = spec["texts"], spec["labels"]
    start = time.perf_counter()
    if mode == "spacy-load":
        # loading alone: how much of spacy-infer's peak is deserialisation
        spacy.load(spec["model"])
    elif mode == "spacy-infer":
        nlp = spacy.load(spec["model"])
        spacy_probs(nlp, texts, spec["batch_size"], labels)
    elif mode in MEMORY_PATHS:
        return _cost_child(mode, spec, start)
    elif mode == "raw-infer":
        # what a raw user loads: the Hugging Face folder, no spaCy pipeline
        tokenizer, encoder = common.load_hf(Path(spec["encoder"]))
        model = common.make_head_module(encoder, len(labels), pooling="mean").eval()
        common.predict_torch(model, tokenizer, texts, batch_size=spec["batch_size"], max_length=spec["max_length"])
    elif mode == "spacy-train":
        args = argparse.Namespace(**spec["args"])
        spacy_epoch_seconds(texts, labels, args, Path(spec["work"]))
    elif mode == "torch-train":
        args = argparse.Namespace(**spec["args"])
        torch_epoch_seconds(texts, labels, args)
    else:
        raise ValueError(mode)
    return {"mode": mode, "peak_rss_mb": peak_rss_mb(), "seconds": time.perf_counter() - start}


def run_in_child(args: argparse.Namespace, work: Path, mode: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one measured phase (run_child) in a fresh process; its result."""
    spec_path = work / f"child-{mode}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf8")
    proc = subprocess.run(
        [sys.executable, __file__, "--data-dir", str(args.data_dir), "--child", mode, "--child-spec", str(spec_path)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_rss(nlp, texts: List[str], labels: List[str], args, work: Path) -> Dict[str, Any]:
    model_dir = work / "speed-model"
    if not model_dir.exists():
        nlp.to_disk(model_dir)
    train_args = {
        "encoder": str(args.encoder), "config": str(args.config), "train_epochs": 1,
        "max_length": args.max_length,
    }
    results = {}
    modes = [
        ("spacy-load", texts), ("spacy-infer", texts), ("raw-infer", texts),
        # the peak comes with the first optimizer step (Adam's moments): 3 batches will do
        ("spacy-train", cycle(texts, min(args.train_texts, 48))), ("torch-train", cycle(texts, min(args.train_texts, 48))),
    ]
    for mode, mode_texts in modes:
        spec = {
            "texts": mode_texts, "labels": labels, "model": str(model_dir), "encoder": str(args.encoder),
            "batch_size": args.batch_size, "max_length": args.max_length, "args": train_args, "work": str(work),
        }
        results[mode] = run_in_child(args, work, mode, spec)
        log(f"rss {mode}: {results[mode]['peak_rss_mb']:.0f} MB")
    return results


# --- cost: int8, fp32, stock, the strongest raw path ----------------------------

COST_PATHS = ("fp32", "int8", "stock", "raw")
# what the load section measures: the quantize command's two kinds too
MEMORY_PATHS = ("fp32", "int8", "int8-embeddings", "stock", "raw")


def raw_sorted_probs(raw: RawPath, texts: Sequence[str], batch_size: int) -> numpy.ndarray:
    """The strongest raw path: every text sorted by wordpiece length, then
    batches of ``batch_size`` padded to their own longest; probabilities
    back in input order. The sort is timed with it."""
    lengths = [len(ids) for ids in raw.tokenizer(list(texts), truncation=True, max_length=raw.max_length)["input_ids"]]
    order = numpy.argsort(lengths, kind="stable")
    probs = raw([texts[i] for i in order], batch_size)
    out = numpy.empty_like(probs)
    out[order] = probs
    return out


def cost_pipelines(nlp, args, labels: Sequence[str], work: Path, quantized: Sequence[str] = ("int8",)) -> Dict[str, Path]:
    """fp32 (the pipeline timed), its copies by ``spacy-mlbert quantize``
    (each kind of ``quantized``) and stock (the project's config with stock
    textcat_multilabel, initialised on the same encoder: an untrained head
    costs what a trained one does), on disk."""
    from spacy import util
    from spacy.training import Example

    paths = {name: work / f"cost-{name}" for name in ("fp32", *quantized, "stock")}
    nlp.to_disk(paths["fp32"])
    for how in quantized:
        command = [sys.executable, "-m", "spacy_mlbert", "quantize", str(paths["fp32"]), str(paths[how]), "--quantize", how]
        subprocess.run(command, check=True, capture_output=True)
    config = common.stock_config(util.load_config(args.config))
    config["paths"]["encoder"] = str(args.encoder)
    timed = nlp.config["components"]["transformer"]["model"]
    if "max_batch_wordpieces" in timed:  # the same length groups as the pipeline timed
        config["components"]["transformer"]["model"]["max_batch_wordpieces"] = timed["max_batch_wordpieces"]
    stock = util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(stock.make_doc("init"), {"cats": {label: 0.0 for label in labels}})]
    stock.initialize(lambda: examples)
    # the same batching as the pipeline timed
    stock.get_pipe("transformer").cfg["max_batch_items"] = nlp.get_pipe("transformer").cfg["max_batch_items"]
    stock.to_disk(paths["stock"])
    return paths


def paths_memory(paths: Dict[str, Path], names: Sequence[str], texts: List[str], labels: Sequence[str], args, work: Path) -> Dict[str, Any]:
    """Each path loaded and predicting ``texts`` in a fresh process
    (_cost_child): load peak, loaded, peak and steady after predicting, and
    the pipeline's size on disk."""
    result = {}
    for name in names:
        spec = {
            "texts": texts, "labels": list(labels), "model": str(paths.get(name, paths["fp32"])), "encoder": str(args.encoder),
            "batch_size": args.batch_size, "pipe_batch_size": args.pipe_batch_size or args.batch_size, "max_length": args.max_length,
        }
        result[name] = run_in_child(args, work, name, spec)
        if name in paths:
            result[name]["disk_mb"] = sum(f.stat().st_size for f in paths[name].rglob("*") if f.is_file()) / 2**20
        log(f"memory {name}: {result[name]}")
    return result


def section_load(nlp, pool: List[str], labels: List[str], args, work: Path) -> Dict[str, Any]:
    """What loading and holding each path costs in memory (no timing: it
    may run beside other work)."""
    paths = cost_pipelines(nlp, args, labels, work, quantized=("int8", "int8-embeddings"))
    return {"n_texts": args.cost_texts, "memory": paths_memory(paths, MEMORY_PATHS, cycle(pool, args.cost_texts), labels, args, work)}


def section_cost(nlp, raw: RawPath, pool: List[str], labels: List[str], args, work: Path) -> Dict[str, Any]:
    import spacy

    paths = cost_pipelines(nlp, args, labels, work)
    loaded = {name: spacy.load(path) for name, path in paths.items()}
    texts = cycle(pool, args.cost_texts)
    batch = args.batch_size
    pipe_batch = args.pipe_batch_size or batch

    def paths_on(docs: Sequence[str], long_docs: bool) -> Dict[str, Callable[[], numpy.ndarray]]:
        fns: Dict[str, Callable[[], numpy.ndarray]] = {
            name: (lambda pipeline=pipeline: common.pipe_probs(pipeline, docs, labels, batch_size=pipe_batch))
            for name, pipeline in loaded.items()
        }
        for raw_batch in sorted({32, batch}):
            # long documents: every window of each, as the pipeline reads them
            # (texts of one length: nothing to sort); short texts: truncated
            # at --max-length, sorted by length
            fns[f"raw_sorted_b{raw_batch}"] = (
                (lambda raw_batch=raw_batch: raw.windows(docs, raw_batch)[0])
                if long_docs
                else (lambda raw_batch=raw_batch: raw_sorted_probs(raw, docs, raw_batch))
            )
        return fns

    def measure(docs: Sequence[str], repeats: int, long_docs: bool = False) -> Dict[str, Any]:
        fns = paths_on(docs, long_docs)
        probs = {name: fn() for name, fn in fns.items()}  # warm-up, and what each computes
        seconds = interleaved(fns, repeats)
        med = {name: statistics.median(v) for name, v in seconds.items()}
        per_second = {name: len(docs) / v for name, v in med.items()}
        anchor = max((name for name in per_second if name.startswith("raw_sorted")), key=per_second.get)
        fp32, int8 = probs["fp32"], probs["int8"]
        return {
            "n_texts": len(docs),
            "seconds_every_round": seconds,
            "texts_per_second": per_second,
            "raw_anchor": anchor,
            "ratio_over_raw_sorted": {name: per_second[name] / per_second[anchor] for name in ("fp32", "int8", "stock")},
            "max_abs_prob_difference_fp32_vs_raw": float(numpy.abs(fp32 - probs[anchor]).max()),
            "max_abs_prob_difference_int8_vs_fp32": float(numpy.abs(int8 - fp32).max()),
            "decision_agreement_int8_vs_fp32_at_0.5": float(((int8 >= 0.5) == (fp32 >= 0.5)).mean()),
        }

    result: Dict[str, Any] = {
        "batch_size": batch, "pipe_batch_size": pipe_batch, "repeats": args.repeats, "texts": measure(texts, args.repeats),
    }
    log(f"cost: {result['texts']['texts_per_second']}")
    result["length"] = []
    for length in [int(x) for x in args.cost_lengths.split(",") if x.strip()]:
        docs = make_length_texts(raw.tokenizer, pool, length, max(2, args.length_wordpieces // length))
        point = {"length": length, **measure(docs, args.repeats, long_docs=True)}
        result["length"].append(point)
        log(f"cost, length {length}: {point['texts_per_second']}")
    del loaded
    result["rss"] = paths_memory(paths, COST_PATHS, texts, labels, args, work)
    return result


def section_batching(nlp, raw: RawPath, pool: List[str], labels: List[str], args) -> Dict[str, Any]:
    """fp32 nlp.pipe under each value of --batch-items (max_batch_items:
    spacy-transformers splits nlp.pipe's buffer into encoder calls of at
    most that many spaCy tokens, sorted by spaCy tokens) or, if given, of
    --batch-wordpieces (max_batch_wordpieces: the encoder's length groups,
    which sort each call by wordpieces); the sorted raw path beside them."""
    texts = cycle(pool, args.cost_texts)
    pipe_batch = args.pipe_batch_size or args.batch_size
    transformer = nlp.get_pipe("transformer")
    saved = transformer.cfg["max_batch_items"]
    padded = [0]
    hook = raw.encoder.register_forward_pre_hook(
        lambda module, args_, kwargs: padded.__setitem__(0, padded[0] + int(numpy.prod(kwargs["input_ids"].shape))),
        with_kwargs=True,
    )

    from spacy_mlbert.layers.length_groups import group_by_length

    encoder_layer = transformer.model.layers[0]
    saved_groups = encoder_layer._func

    def pipe_with(setting: str, value: int) -> Callable[[], numpy.ndarray]:
        def run() -> numpy.ndarray:
            if setting == "max_batch_items":
                transformer.cfg["max_batch_items"] = value
            else:
                group_by_length(encoder_layer, value)
            try:
                return common.pipe_probs(nlp, texts, labels, batch_size=pipe_batch)
            finally:
                transformer.cfg["max_batch_items"] = saved
                encoder_layer._func = saved_groups
        return run

    setting, values = (
        ("max_batch_wordpieces", args.batch_wordpieces) if args.batch_wordpieces else ("max_batch_items", args.batch_items)
    )
    fns: Dict[str, Callable[[], Any]] = {f"{setting}={v}": pipe_with(setting, int(v)) for v in values.split(",") if v.strip()}
    for raw_batch in (32, 64):
        fns[f"raw_sorted_b{raw_batch}"] = lambda raw_batch=raw_batch: raw_sorted_probs(raw, texts, raw_batch)
    probs, wordpieces = {}, {}
    try:
        for name, fn in fns.items():  # warm-up, what each computes and feeds the encoder
            padded[0] = 0
            probs[name] = fn()
            wordpieces[name] = padded[0]
    finally:
        hook.remove()
    seconds = interleaved(fns, args.repeats)
    per_second = {name: len(texts) / statistics.median(v) for name, v in seconds.items()}
    anchor = max((name for name in per_second if name.startswith("raw_sorted")), key=per_second.get)
    reference = probs[anchor]
    return {
        "n_texts": len(texts), "pipe_batch_size": pipe_batch, "repeats": args.repeats, "setting": setting,
        "max_batch_items": saved,
        "seconds_every_round": seconds, "texts_per_second": per_second, "raw_anchor": anchor,
        "ratio_over_raw_sorted": {name: v / per_second[anchor] for name, v in per_second.items()},
        "padded_wordpieces": wordpieces,
        "max_abs_prob_difference_vs_raw": {name: float(numpy.abs(p - reference).max()) for name, p in probs.items()},
    }


def rss_mb() -> float:
    """This process's resident memory now, in MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cost_child(mode: str, spec: Dict[str, Any], start: float) -> Dict[str, Any]:
    """Load one path and predict, in a fresh process: peak RSS of the load,
    steady RSS once loaded, peak and steady after predicting."""
    import gc

    import spacy

    if mode == "raw":  # what a raw user loads: the Hugging Face folder, no spaCy pipeline
        tokenizer, encoder = common.load_hf(Path(spec["encoder"]))
        model = common.make_head_module(encoder, len(spec["labels"]), pooling="mean").eval()
        predict = lambda: common.predict_torch(model, tokenizer, spec["texts"], batch_size=spec["batch_size"], max_length=spec["max_length"])  # noqa: E731
    else:
        nlp = spacy.load(spec["model"])
        predict = lambda: common.pipe_probs(nlp, spec["texts"], spec["labels"], batch_size=spec["pipe_batch_size"])  # noqa: E731
    gc.collect()
    loaded = {"load_peak_rss_mb": peak_rss_mb(), "loaded_rss_mb": rss_mb()}
    predict()
    gc.collect()
    return {"mode": mode, **loaded, "peak_rss_mb": peak_rss_mb(), "steady_rss_mb": rss_mb(), "seconds": time.perf_counter() - start}


# --- main ---------------------------------------------------------------------


def run(args: argparse.Namespace) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlbert-speed-") as tmp:
        work = Path(tmp)
        # one copy of the config for every section and subprocess: others
        # edit the project's files while a run goes on
        snapshot = work / "config.cfg"
        config_text = Path(args.config).read_text(encoding="utf8")
        snapshot.write_text(config_text, encoding="utf8")
        original_config, args.config = args.config, snapshot
        try:
            return _run(args, work, config_text, original_config)
        finally:
            args.config = original_config


def _run(args: argparse.Namespace, work: Path, config_text: str, original_config: Path) -> Dict[str, Any]:
    started = common.now_iso()
    t0 = time.perf_counter()
    pool = read_texts(args.data_dir, [lang.strip() for lang in args.langs.split(",") if lang.strip()])
    labels = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    texts = cycle(pool, args.n_texts)
    nlp = build_pipeline(args, labels)
    if args.max_batch_items:
        nlp.get_pipe("transformer").cfg["max_batch_items"] = args.max_batch_items
    if args.max_batch_wordpieces >= 0:
        from spacy_mlbert.layers.length_groups import group_by_length

        # in the config too: the quantize command's copy and stock are built from it
        nlp.config["components"]["transformer"]["model"]["max_batch_wordpieces"] = args.max_batch_wordpieces
        group_by_length(nlp.get_pipe("transformer").model.layers[0], args.max_batch_wordpieces)
    from spacy_mlbert.evaluation import find_textcat

    labels = list(find_textcat(nlp)[1].labels)
    raw = RawPath(nlp, args.max_length)
    results: Dict[str, Any] = {
        "benchmark": "speed",
        "command": common.command_line(),
        "date": started,
        "settings": {
            "encoder": str(args.encoder), "config": str(original_config),
            "raw_window_wordpieces_and_step": list(raw.window),
            "model": str(args.model) if args.model else "initialised from --config (untrained head)",
            "n_texts": len(texts), "batch_size": args.batch_size, "max_length": args.max_length,
            "repeats": args.repeats, "quick": args.quick, "pooling": raw.pooling,
        },
        "versions": common.versions(),
        "git": common.git_state(),
        "config_text": config_text,
        "machine": common.machine(),
    }
    if "infer" in args.sections:
        results["inference"] = section_infer(nlp, raw, texts, labels, args)
        log(f"inference: ratio {results['inference']['ratio_spacy_over_raw']:.3f}")
    if "length" in args.sections:
        results["length"] = section_length(nlp, raw, pool, labels, args)
    if "size" in args.sections:
        results["size"] = section_size(nlp, raw, pool, labels, args)
    if "train" in args.sections:
        results["training"] = section_train(pool, labels, args, work)
        log(f"training: ratio {results['training']['ratio_spacy_over_torch']:.3f} over PyTorch, {results['training']['ratio_spacy_over_stock']:.3f} over stock")
    if "rss" in args.sections:
        results["peak_rss"] = section_rss(nlp, texts, labels, args, work)
    if "cost" in args.sections:
        results["cost"] = section_cost(nlp, raw, pool, labels, args, work)
    if "load" in args.sections:
        results["load"] = section_load(nlp, pool, labels, args, work)
    if "batching" in args.sections:
        results["batching"] = section_batching(nlp, raw, pool, labels, args)
        log(f"batching: {results['batching']['ratio_over_raw_sorted']}")
    results["total_seconds"] = time.perf_counter() - t0
    results["machine_at_end"] = {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    return results


def report(results: Dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    lines = []
    inf = results.get("inference")
    if inf:
        lines += [
            "| inference | spaCy nlp.pipe | raw transformers | ratio (target >= 0.95) |",
            "|---|---:|---:|---:|",
            f"| docs/s ({inf['n_texts']} texts, batch {inf['batch_size']}) | {inf['docs_per_second']['spacy']:.1f} | {inf['docs_per_second']['raw']:.1f} | {inf['ratio_spacy_over_raw']:.3f} |",
            f"| docs/s, raw sorted into sub-batches of <= {inf['max_batch_items']} wordpieces | {inf['docs_per_second']['spacy']:.1f} | {inf['docs_per_second']['raw_sorted']:.1f} | {inf['ratio_spacy_over_raw_sorted']:.3f} |",
            f"| CPU s (median): spaCy, raw, raw sorted | {statistics.median(inf['cpu_seconds']['spacy']):.1f} | {statistics.median(inf['cpu_seconds']['raw']):.1f}, {statistics.median(inf['cpu_seconds']['raw_sorted']):.1f} | {inf['ratio_cpu_time_raw_over_spacy']:.3f}, {inf['ratio_cpu_time_raw_sorted_over_spacy']:.3f} (raw/spaCy) |",
            "", f"max |p_spacy - p_raw| = {inf['max_abs_prob_difference']:.2e}", "",
        ]
    tr = results.get("training")
    if tr:
        lines += [
            "| training (s/epoch, median) | spacy train, mlbert_textcat | PyTorch loop | spacy train, stock textcat_multilabel | mlbert / PyTorch (target <= 1.10) | mlbert / stock (target <= 1.00) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| wall ({tr['n_texts']} texts, batch {tr['batch_size']}, epochs {tr['compared_epochs']}, {tr['rounds']} rounds) | {tr['spacy_seconds_per_epoch']:.1f} | {tr['torch_seconds_per_epoch']:.1f} | {tr['stock_seconds_per_epoch']:.1f} | {tr['ratio_spacy_over_torch']:.3f} | {tr['ratio_spacy_over_stock']:.3f} |",
            f"| CPU | {statistics.median(tr['epoch_cpu_seconds']['spacy']):.1f} | {statistics.median(tr['epoch_cpu_seconds']['torch']):.1f} | {statistics.median(tr['epoch_cpu_seconds']['stock']):.1f} | {tr['ratio_cpu_time_spacy_over_torch']:.3f} | {tr['ratio_cpu_time_spacy_over_stock']:.3f} |",
        ]
        if "encoder_work_per_epoch" in tr:
            work = {
                name: statistics.median(done["padded_wordpieces"] for done in epochs)
                for name, epochs in tr["encoder_work_per_epoch"].items()
            }
            real = {
                name: statistics.median(done["real_wordpieces"] for done in epochs)
                for name, epochs in tr["encoder_work_per_epoch"].items()
            }
            per_kwp = tr["seconds_per_1k_padded_wordpieces"]
            lines += [
                f"| padded wordpieces fed to the encoder per epoch (real) | {work['spacy']:,.0f} ({real['spacy']:,.0f}) | {work['torch']:,.0f} ({real['torch']:,.0f}) | {work['stock']:,.0f} ({real['stock']:,.0f}) | {work['spacy'] / work['torch']:.3f} | {work['spacy'] / work['stock']:.3f} |",
                f"| wall s per 1,000 padded wordpieces | {per_kwp['spacy']:.3f} | {per_kwp['torch']:.3f} | {per_kwp['stock']:.3f} | {tr['ratio_per_padded_wordpiece_spacy_over_torch']:.3f} | {per_kwp['spacy'] / per_kwp['stock']:.3f} |",
            ]
        lines.append("")
    rss = results.get("peak_rss")
    if rss:
        lines += ["| peak RSS | MB |", "|---|---:|"]
        lines += [f"| {mode} | {v['peak_rss_mb']:.0f} |" for mode, v in rss.items()]
        lines.append("")
    cost = results.get("cost")
    if cost:
        lines += cost_report(cost)
    if results.get("load"):
        lines += memory_report(results["load"]["memory"])
    for key, title, unit in (("length", "wordpieces/doc", "length"), ("size", "texts", "n_texts")):
        points = results.get(key)
        if points:
            lines += [f"| {title} | spaCy docs/s | raw docs/s | ratio |", "|---:|---:|---:|---:|"]
            lines += [
                f"| {p[unit]} | {p['docs_per_second']['spacy']:.2f} | {p['docs_per_second']['raw']:.2f} | {p['ratio_spacy_over_raw']:.3f} |"
                for p in points
            ]
            lines.append("")
    return "\n".join(lines)


def cost_report(cost: Dict[str, Any]) -> List[str]:
    """The cost section as Markdown: texts/s (median, every round listed)
    and the ratio over the strongest raw path, then RSS."""
    lines = ["| texts | path | texts/s (median) | / raw sorted | seconds, every round |", "|---|---|---:|---:|---|"]
    for point in [{"length": "BRIGHTER", **cost["texts"]}] + cost["length"]:
        label = f"{point['n_texts']} {point['length']}" + ("" if point["length"] == "BRIGHTER" else " wp")
        for name, per_second in point["texts_per_second"].items():
            ratio = point["ratio_over_raw_sorted"].get(name)
            rounds = ", ".join(f"{x:.2f}" for x in point["seconds_every_round"][name])
            mark = " (anchor)" if name == point["raw_anchor"] else ""
            lines.append(f"| {label} | {name}{mark} | {per_second:.1f} | {'' if ratio is None else f'{ratio:.2f}'} | {rounds} |")
    return lines + [""] + memory_report(cost["rss"])


def memory_report(memory: Dict[str, Any]) -> List[str]:
    """paths_memory's figures as a Markdown table."""
    lines = ["| path | on disk MB | load peak MB | loaded MB | peak MB (load + predict) | steady MB |", "|---|---:|---:|---:|---:|---:|"]
    for name, rss in memory.items():
        disk = f"{rss['disk_mb']:.0f}" if "disk_mb" in rss else ""
        lines.append(f"| {name} | {disk} | {rss['load_peak_rss_mb']:.0f} | {rss['loaded_rss_mb']:.0f} | {rss['peak_rss_mb']:.0f} | {rss['steady_rss_mb']:.0f} |")
    return lines + [""]


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.child_spec).read_text(encoding="utf8"))
        print(json.dumps(run_child(args.child, spec)))
        return {}
    results = run(args)
    print(report(results))
    print(f"Wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
