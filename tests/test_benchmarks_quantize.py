"""Smoke test of benchmarks/quantize_quality.py on a tiny pipeline: the
wiring and the JSON, not the figures."""
import csv
import json
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from util import TRAIN_DATA, save_tiny_pipeline, write_dev_docbin

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import quantize_quality  # noqa: E402

LABELS = ["negative", "positive", "slow", "useful"]
DEV = {
    "eng": ["The phone is great.", "Slow and terrible delivery.", "Useful and good.", "Bad, bad service."],
    "rus": ["Очень хорошо.", "Ужасно медленно.", "Полезная вещь.", "Плохой сервис."],
}


@pytest.fixture(scope="module")
def bench_dirs(workdir, tiny_xlmr_dir):
    model = save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=4, thresholds={"positive": 0.4})
    dev = workdir / "dev"
    dev.mkdir()
    for lang, texts in DEV.items():
        columns = [label for label in LABELS if not (lang == "eng" and label == "useful")]
        with (dev / f"{lang}.csv").open("w", encoding="utf8", newline="") as file_:
            writer = csv.writer(file_)
            writer.writerow(["id", "text", *columns])
            for i, text in enumerate(texts):
                writer.writerow([f"{lang}_{i}", text, *((i + j) % 2 for j in range(len(columns)))])
    return model, dev, write_dev_docbin(workdir / "refit.spacy")


def test_quantize_quality_scores_fp32_and_int8(bench_dirs, workdir):
    model, dev, refit = bench_dirs
    out = workdir / "quantize.json"
    args = ["--model", str(model), "--eval-dir", str(dev), "--langs", "eng,rus", "--refit-dev", str(refit),
            "--quantize", "int8,int8-embeddings", "--resamples", "20", "--batch-size", "4", "--out", str(out)]
    results = quantize_quality.main(args)
    saved = json.loads(out.read_text(encoding="utf8"))  # srsly keeps 10 decimals
    assert saved["variants"].keys() == results["variants"].keys()
    assert saved["variants"]["int8"]["average"]["macro_f"] == pytest.approx(results["variants"]["int8"]["average"]["macro_f"])
    variants = results["variants"]
    assert list(variants) == ["fp32", "int8", "int8+refit", "int8-embeddings", "int8-embeddings+refit"]
    assert results["settings"]["refit_texts"] == len(TRAIN_DATA)
    assert results["settings"]["eval_texts"] == {"eng": 4, "rus": 4}
    fp32 = variants["fp32"]
    assert "useful" not in fp32["per_language"]["eng"]["labels"]
    assert "against_fp32" not in fp32 and fp32["thresholds"]["positive"] == 0.4
    for name, variant in variants.items():
        assert 0.0 <= variant["average"]["macro_f"] <= 1.0
        assert 0.0 <= variant["ece"]["macro"] <= 1.0
        if name == "fp32":
            continue
        against = variant["against_fp32"]
        assert 0.0 <= against["decision_agreement"] <= 1.0
        assert set(against["decision_agreement_per_language"]) == {"eng", "rus"}
        boot = against["macro_f_paired_bootstrap"]
        expected = variant["average"]["macro_f"] - fp32["average"]["macro_f"]
        assert boot["difference"] == pytest.approx(expected) and boot["low_2.5"] <= boot["high_97.5"]
    # fp32 hardly depends on the batch; int8 a little (one activation scale per batch)
    assert variants["fp32"]["batch_dependence"]["texts"] == 8
    assert variants["fp32"]["batch_dependence"]["prob_abs_diff_max"] < 1e-4
    assert "batch_dependence" in variants["int8"] and "batch_dependence" not in variants["int8+refit"]
    # kept: fp32's thresholds; refit: tuned on the quantized model
    assert variants["int8"]["thresholds"] == fp32["thresholds"]
    # the tiny encoder moves so little that int8 decides as fp32 does
    assert variants["int8"]["against_fp32"]["decision_agreement"] >= 0.9


def test_quantize_quality_memory(bench_dirs, workdir):
    model, dev, _ = bench_dirs
    args = ["--model", str(model), "--eval-dir", str(dev), "--langs", "eng,rus", "--quantize", "int8-embeddings",
            "--resamples", "2", "--memory", "--out", str(workdir / "memory.json")]
    variants = quantize_quality.main(args)["variants"]
    assert list(variants) == ["fp32", "int8-embeddings"]
    for variant in variants.values():
        memory = variant["memory"]
        assert 0 < memory["peak_rss_mb_load"] <= memory["peak_rss_mb_load_and_predict"]
        assert memory["rss_mb_end"] > 0
    # the quantize command saves the int8 weights themselves
    assert variants["int8-embeddings"]["memory"]["disk_mb"] < variants["fp32"]["memory"]["disk_mb"]


def test_quantize_quality_refuses_a_refit_slice_with_scored_texts(bench_dirs, workdir):
    model, dev, _ = bench_dirs
    nlp = spacy.blank("xx")
    doc = nlp.make_doc(DEV["rus"][1])
    doc.cats = {"slow": 1.0}
    DocBin(docs=[doc]).to_disk(workdir / "leaky.spacy")
    args = ["--model", str(model), "--eval-dir", str(dev), "--langs", "eng,rus", "--refit-dev", str(workdir / "leaky.spacy"),
            "--out", str(workdir / "never.json")]
    with pytest.raises(SystemExit, match="1 scored text"):
        quantize_quality.main(args)
    assert not (workdir / "never.json").exists()
