"""Smoke tests that keep benchmarks/quality.py, speed.py and gpu_train.py working.

They run the scripts' own entry points on a few synthetic texts with the tiny
test encoder; the figures mean nothing, the wiring and the JSON do. Every
system (mlbert, TF-IDF, the stock and plain anchors) runs in the default
test run; the full runs (all systems in one run, GoEmotions, every speed
section, peak memory in subprocesses) are marked slow.
"""
import csv
import json
import sys
from pathlib import Path

import numpy
import pytest
from spacy.util import make_tempdir

from spacy_mlbert.tuning.thresholds import DEFAULT_METHOD

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import benchlib  # noqa: E402
import gpu_train  # noqa: E402
import quality  # noqa: E402
import report  # noqa: E402
import speed  # noqa: E402
import threshold_cv  # noqa: E402

LABELS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
TEXTS = {
    "eng": [
        "I am so angry about the delay.",
        "What a lovely surprise, thank you!",
        "I was scared walking home alone.",
        "This makes me really happy.",
        "I miss her so much, it hurts.",
        "Nothing special happened today.",
        "The smell was horrible and I felt sick.",
        "Wow, I did not expect that at all!",
    ],
    "rus": [
        "Я очень зол на эту задержку.",
        "Какой приятный сюрприз, спасибо!",
        "Мне было страшно идти домой.",
        "Это меня очень радует.",
        "Я так скучаю по ней.",
        "Сегодня ничего не случилось.",
        "Запах был ужасный, меня тошнило.",
        "Вот это да, не ожидал!",
    ],
    "afr": [
        "Ek is baie kwaad oor die vertraging.",
        "Ek was bang om alleen huis toe te loop.",
        "Dit maak my baie gelukkig.",
        "Ek mis haar so baie.",
    ],
}


def _write_csv(path: Path, lang: str, texts, columns, seed: int) -> None:
    rng = numpy.random.RandomState(seed)
    with path.open("w", encoding="utf8", newline="") as file_:
        writer = csv.writer(file_)
        writer.writerow(["id", "text", *columns])
        for i, text in enumerate(texts):
            writer.writerow([f"{lang}_{i}", text, *(int(rng.rand() < 0.4) for _ in columns)])


@pytest.fixture
def semeval_dirs():
    """train/ and dev/ CSVs: eng without a disgust column (as in BRIGHTER),
    rus with all six, afr (dev only, for zero-shot) without surprise."""
    with make_tempdir() as tmp:
        for split, seed in (("train", 0), ("dev", 1)):
            folder = tmp / split
            folder.mkdir()
            _write_csv(folder / "eng.csv", "eng", TEXTS["eng"], [l for l in LABELS if l != "disgust"], seed)
            _write_csv(folder / "rus.csv", "rus", TEXTS["rus"], LABELS, seed + 2)
            if split == "dev":
                _write_csv(folder / "afr.csv", "afr", TEXTS["afr"], [l for l in LABELS if l != "surprise"], 5)
        yield tmp


def _quality_args(dirs: Path, encoder: Path, out: Path, *extra: str):
    return [
        "--train-dir", str(dirs / "train"), "--eval-dir", str(dirs / "dev"), "--langs", "eng,rus",
        "--n", "8", "--encoder", str(encoder), "--epochs", "1", "--plain-epochs", "1",
        "--out", str(out), *extra,
    ]


def test_official_scores_match_sklearn_and_skip_missing_columns():
    from sklearn.metrics import f1_score

    labels = ["a", "b", "c"]
    y_true = numpy.asarray([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype="f")
    y_pred = numpy.asarray([[1, 0, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1]], dtype="f")
    langs = ["x", "x", "y", "y"]
    scores = benchlib.official_scores(y_true, y_pred, langs, labels, {"x": ["a", "b", "c"], "y": ["a", "c"]})
    assert scores["x"]["macro_f"] == pytest.approx(f1_score(y_true[:2], y_pred[:2], average="macro", zero_division=0))
    # "y" lacks column "b": its score is over a and c only
    cols = [0, 2]
    assert scores["y"]["macro_f"] == pytest.approx(f1_score(y_true[2:, cols], y_pred[2:, cols], average="macro", zero_division=0))
    assert scores["y"]["micro_f"] == pytest.approx(f1_score(y_true[2:, cols], y_pred[2:, cols], average="micro", zero_division=0))
    assert benchlib.averages(scores, ["x", "y"])["macro_f"] == pytest.approx((scores["x"]["macro_f"] + scores["y"]["macro_f"]) / 2)


def test_first_n_shuffled_is_seeded_prefix():
    records = list(range(50))
    first = benchlib.first_n_shuffled(records, 10)
    assert first == benchlib.first_n_shuffled(records, 10)
    assert first == benchlib.first_n_shuffled(records, 20)[:10]
    assert sorted(benchlib.first_n_shuffled(records, 0)) == records


def test_load_semeval_keeps_missing_columns_unknown(semeval_dirs):
    data = benchlib.load_semeval(semeval_dirs / "train", semeval_dirs / "dev", ["eng", "rus"], 5, zero_shot_langs=["afr"])
    assert data.labels == sorted(LABELS)
    assert "disgust" not in data.lang_labels["eng"] and "surprise" not in data.lang_labels["afr"]
    assert all("disgust" not in r.cats for r in data.train if r.lang == "eng")
    assert data.summary()["train_texts"] == {"eng": 5, "rus": 5}
    assert data.summary()["eval_texts"] == {"eng": 8, "rus": 8, "afr": 4}


def test_stock_config_swaps_only_the_component():
    project = benchlib.load_project_config()
    stock = benchlib.stock_config(project)
    assert stock["nlp"]["pipeline"] == ["transformer", "textcat_multilabel"]
    assert stock["components"]["textcat_multilabel"]["model"]["@architectures"] == "spacy.TextCatEnsemble.v2"
    assert stock["training"] == project["training"]
    assert "mlbert_textcat" in project["components"]  # the original is untouched


def test_quality_tfidf_and_mlbert(semeval_dirs, tiny_xlmr_dir):
    out = semeval_dirs / "results.json"
    results = quality.main(_quality_args(semeval_dirs, tiny_xlmr_dir, out, "--systems", "tfidf,mlbert", "--zero-shot-langs", "afr"))
    assert json.loads(out.read_text(encoding="utf8")) == json.loads(json.dumps(results))
    systems = results["systems"]
    assert set(systems) == {"tfidf", "mlbert"}
    mlbert = systems["mlbert"]
    assert set(mlbert["per_language"]) == {"eng", "rus", "afr"}
    assert "disgust" not in mlbert["per_language"]["eng"]["labels"]
    # per-language TF-IDF models have no prediction without training texts; a joint one has
    tfidf_mode = systems["tfidf"]["settings"]["mode"]
    assert ("afr" in systems["tfidf"]["per_language"]) == (tfidf_mode == "joint")
    for system in systems.values():
        for scores in system["per_language"].values():
            assert 0.0 <= scores["macro_f"] <= 1.0 and 0.0 <= scores["micro_f"] <= 1.0
        assert system["train_seconds"] >= 0
        # calibration of every system's probabilities on the eval texts
        assert 0.0 <= system["ece"]["macro"] <= 1.0 and set(system["ece"]["per_label"]) <= set(LABELS)
        assert system["ece"]["n_bins"] == 15
    assert set(mlbert["holdout_ece"]) == {"before", "after"}
    assert set(mlbert["thresholds"]) == set(LABELS)
    assert "at_threshold_0.5" in mlbert
    assert results["settings"]["fit_texts"] + results["settings"]["holdout_texts"] == 16
    assert "spacy" in results["versions"] and results["date"]
    assert "| **average** |" in quality.markdown(results)
    # decisions are stored, and a difference between systems gets an interval
    assert len(mlbert["predictions"]) == len(results["settings"]["eval_ids"]) == sum(results["settings"]["eval_texts"].values())
    run = dict(json.loads(out.read_text(encoding="utf8")), _path=str(out))
    same = report.paired(report.merge([run]), "mlbert", "mlbert", 20)
    assert same["difference"] == same["low_2.5"] == same["high_97.5"] == 0.0 and same["share_not_ahead"] == 1.0
    diff = report.paired(report.merge([run]), "mlbert", "tfidf", 20)
    expected = mlbert["average"]["macro_f"] - systems["tfidf"]["average"]["macro_f"]
    assert diff["difference"] == pytest.approx(expected) and diff["low_2.5"] <= diff["high_97.5"]
    with pytest.raises(ValueError, match="no system 'stock'"):
        report.paired(report.merge([run]), "mlbert", "stock", 20)


def test_quality_experiment_override(semeval_dirs, tiny_xlmr_dir):
    out = semeval_dirs / "exp.json"
    results = quality.main(
        _quality_args(
            semeval_dirs, tiny_xlmr_dir, out, "--systems", "mlbert", "--mlbert-name", "mlbert-cls",
            "--mlbert-set", "components.mlbert_textcat.model.tok2vec.pooling=cls",
            "--mlbert-set", 'components.mlbert_textcat.pos_weight="auto"',
            "--keep-models", "--work-dir", str(semeval_dirs / "work"),
        )
    )
    variant = results["systems"]["mlbert-cls"]["settings"]["variant"]
    assert variant == {"components.mlbert_textcat.model.tok2vec.pooling": "cls", "components.mlbert_textcat.pos_weight": "auto"}
    # the kept model is scored again, with other thresholds, without training
    model = semeval_dirs / "work" / "mlbert-cls" / "model-best"
    again = quality.main(
        _quality_args(
            semeval_dirs, tiny_xlmr_dir, semeval_dirs / "again.json", "--systems", "mlbert", "--mlbert-name", "again",
            "--mlbert-model", str(model), "--tune-method", "global",
        )
    )["systems"]["again"]
    first = results["systems"]["mlbert-cls"]
    assert again["train_seconds"] == 0 and again["settings"]["trained_model"] == str(model) and model.exists()
    assert again["tune_method"] == "global" and first["tune_method"] == DEFAULT_METHOD
    assert len(set(again["thresholds"].values())) == 1
    assert again["at_threshold_0.5"] == first["at_threshold_0.5"]
    # an ensemble of the model with itself is the model, calibrated and tuned alike
    twice = quality.main(
        _quality_args(
            semeval_dirs, tiny_xlmr_dir, semeval_dirs / "twice.json", "--systems", "mlbert", "--mlbert-name", "twice",
            "--mlbert-ensemble", f"{model},{model}",
        )
    )["systems"]["twice"]
    assert twice["settings"]["ensemble"] == [str(model)] * 2 and twice["train_seconds"] == 0
    assert twice["at_threshold_0.5"] == first["at_threshold_0.5"]
    assert twice["predictions"] == first["predictions"] and twice["thresholds"] == first["thresholds"]
    assert twice["holdout_macro_f"] == pytest.approx(first["holdout_macro_f"])
    # the tuning methods compared on halves of the held-out slice
    cv = threshold_cv.main(
        ["--model", str(model), "--data", str(semeval_dirs / "work" / "holdout.spacy"), "--repeats", "3",
         "--out", str(semeval_dirs / "cv.json")]
    )
    assert set(cv["methods"]) == {"fixed", "exact", "bagged", "smoothed", "global"}
    assert cv["methods"]["exact"]["minus_exact"] == 0.0
    assert all(0.0 <= row["mean_macro_f"] <= 1.0 for row in cv["methods"].values())


def test_quality_staged_mlbert(semeval_dirs, tiny_xlmr_dir):
    """--mlbert-staged trains a phase per language, then the joint phase,
    which is the model scored; the seconds are those of all phases."""
    work = semeval_dirs / "work"
    results = quality.main(
        _quality_args(
            semeval_dirs, tiny_xlmr_dir, semeval_dirs / "staged.json", "--systems", "mlbert",
            "--mlbert-name", "staged", "--mlbert-staged", "rus,eng", "--stage-epochs", "1",
            "--keep-models", "--work-dir", str(work),
        )
    )["systems"]["staged"]
    assert results["settings"]["staged"] == {"langs": "rus,eng", "stage_epochs": 1}
    assert results["train_seconds"] > 0
    phases = sorted(path.name for path in (work / "staged").iterdir())
    assert phases == ["joint", "phase1-rus", "phase2-eng"]
    assert (work / "staged" / "joint" / "model-best").exists()
    assert 0.0 <= results["average"]["macro_f"] <= 1.0


def _speed_texts(tmp):
    """A folder of eng and rus CSVs: the texts speed.py reads."""
    dev = tmp / "dev"
    dev.mkdir()
    for lang in ("eng", "rus"):
        _write_csv(dev / f"{lang}.csv", lang, TEXTS[lang], LABELS, 0)
    return dev


def test_speed_quick_inference_matches_raw(tiny_xlmr_dir):
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        out = tmp / "speed.json"
        results = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--only", "infer,size", "--out", str(out)]
        )
        assert out.exists()
    inference = results["inference"]
    assert inference["docs_per_second"]["spacy"] > 0 and inference["docs_per_second"]["raw"] > 0
    # the raw path reuses the pipeline's weights: the probabilities must agree
    assert inference["max_abs_prob_difference"] < 1e-4
    assert [p["n_texts"] for p in results["size"]] == [8, 16]
    assert "| inference |" in speed.report(results)


def test_speed_quick_cost_section(tiny_xlmr_dir):
    """fp32, int8, stock and the sorted raw path, interleaved, with RSS."""
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        results = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--only", "cost", "--out", str(tmp / "speed.json")]
        )
    cost = results["cost"]
    point = cost["texts"]
    assert set(point["texts_per_second"]) == {"fp32", "int8", "stock", "raw_sorted_b32", "raw_sorted_b64"}
    assert all(len(rounds) == 1 for rounds in point["seconds_every_round"].values())
    # the sorted raw path computes what the pipeline does (same weights)
    assert point["max_abs_prob_difference_fp32_vs_raw"] < 1e-4
    assert point["max_abs_prob_difference_int8_vs_fp32"] < 0.05
    assert [p["length"] for p in cost["length"]] == [64, 256]
    for name in ("fp32", "int8", "stock", "raw"):
        rss = cost["rss"][name]
        assert 0 < rss["loaded_rss_mb"] <= rss["load_peak_rss_mb"] <= rss["peak_rss_mb"]
    assert "(anchor)" in speed.report(results)


def test_speed_quick_load_section(tiny_xlmr_dir):
    """Memory of loading fp32, both kinds of quantize, stock and raw, each
    in a fresh process, with the pipelines' sizes on disk."""
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        results = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--only", "load", "--out", str(tmp / "speed.json")]
        )
    memory = results["load"]["memory"]
    assert list(memory) == ["fp32", "int8", "int8-embeddings", "stock", "raw"]
    for rss in memory.values():
        assert 0 < rss["loaded_rss_mb"] <= rss["load_peak_rss_mb"] <= rss["peak_rss_mb"]
    # quantize saves int8 weights: smaller on disk than fp32's
    assert memory["int8-embeddings"]["disk_mb"] < memory["int8"]["disk_mb"] < memory["fp32"]["disk_mb"]
    assert "| int8-embeddings |" in speed.report(results)


def test_speed_quick_batching_section(tiny_xlmr_dir):
    """nlp.pipe under several max_batch_items, interleaved with the sorted
    raw path: the same probabilities, the wordpieces each feeds the encoder."""
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        results = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--only", "batching",
             "--batch-items", "8,4096", "--pipe-batch-size", "24", "--out", str(tmp / "speed.json")]
        )
    batching = results["batching"]
    assert set(batching["texts_per_second"]) == {"max_batch_items=8", "max_batch_items=4096", "raw_sorted_b32", "raw_sorted_b64"}
    assert all(diff < 1e-4 for diff in batching["max_abs_prob_difference_vs_raw"].values())
    wordpieces = batching["padded_wordpieces"]
    assert all(n > 0 for n in wordpieces.values())
    # one call per text pads nothing; one call for the whole buffer pads more
    assert wordpieces["max_batch_items=8"] <= wordpieces["max_batch_items=4096"]
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        groups = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--only", "batching",
             "--batch-wordpieces", "16,4096", "--pipe-batch-size", "24", "--out", str(tmp / "speed.json")]
        )["batching"]
    assert groups["setting"] == "max_batch_wordpieces"
    assert all(diff < 1e-4 for diff in groups["max_abs_prob_difference_vs_raw"].values())
    # groups of one text each pad nothing
    assert groups["padded_wordpieces"]["max_batch_wordpieces=16"] < groups["padded_wordpieces"]["max_batch_wordpieces=4096"]


def test_quality_stock_and_plain_anchors(semeval_dirs, tiny_xlmr_dir):
    """The two anchors mlbert is compared with: stock textcat_multilabel
    through spacy train, and the plain transformers + PyTorch recipe."""
    out = semeval_dirs / "anchors.json"
    results = quality.main(_quality_args(semeval_dirs, tiny_xlmr_dir, out, "--systems", "stock,plain", "--zero-shot-langs", "afr"))
    assert json.loads(out.read_text(encoding="utf8")) == json.loads(json.dumps(results))
    stock, plain = results["systems"]["stock"], results["systems"]["plain"]
    assert list(results["systems"]) == ["stock", "plain"]
    for system in (stock, plain):
        assert set(system["per_language"]) == {"eng", "rus", "afr"}
        assert "disgust" not in system["per_language"]["eng"]["labels"]
        assert all(0.0 <= s["macro_f"] <= 1.0 for s in system["per_language"].values())
        # the tiny plain training can round to 0.0 s; a spacy train run cannot
        assert system["zero_shot_average"]["macro_f"] is not None and system["train_seconds"] >= 0
        assert len(system["predictions"]) == sum(results["settings"]["eval_texts"].values())
    assert stock["train_seconds"] > 0
    assert stock["settings"]["architecture"] == "spacy.TextCatEnsemble.v2" and stock["settings"]["threshold"] == 0.5
    assert set(stock["with_tuned_thresholds"]["thresholds"]) == set(LABELS)
    assert plain["settings"]["epochs"] == 1
    table = quality.markdown(results)
    assert "| **average** |" in table and "stock" in table and "plain" in table


@pytest.mark.slow
def test_quality_all_systems(semeval_dirs, tiny_xlmr_dir):
    out = semeval_dirs / "all.json"
    results = quality.main(_quality_args(semeval_dirs, tiny_xlmr_dir, out, "--zero-shot-langs", "afr"))
    assert list(results["systems"]) == ["tfidf", "mlbert", "stock", "plain"]
    for name in ("mlbert", "stock", "plain"):
        assert set(results["systems"][name]["per_language"]) == {"eng", "rus", "afr"}
        assert results["systems"][name]["zero_shot_average"]["macro_f"] is not None
    # stock's tuned thresholds: a column of the table and a system to compare with
    assert len(results["systems"]["stock"]["with_tuned_thresholds"]["predictions"]) == len(results["settings"]["eval_ids"])
    assert "| macro-F1 | tfidf | mlbert | stock | stock+tuning | plain |" in quality.markdown(results)
    run = dict(json.loads(out.read_text(encoding="utf8")), _path=str(out))
    diff = report.paired(report.merge([run]), "mlbert", "stock+tuning", 10)
    tuned = results["systems"]["stock"]["with_tuned_thresholds"]["average"]["macro_f"]
    assert diff["difference"] == pytest.approx(results["systems"]["mlbert"]["average"]["macro_f"] - tuned)
    for result in results["systems"].values():
        assert 0.0 <= result["ece"]["macro"] <= 1.0


@pytest.mark.slow
def test_quality_goemotions(tiny_xlmr_dir):
    names = ["admiration", "anger", "joy", "neutral"]
    with make_tempdir() as tmp:
        (tmp / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf8")
        for split in ("train", "dev"):
            rows = [f"{text}\t{i % len(names)}\t{split}{i}" for i, text in enumerate(TEXTS["eng"])]
            (tmp / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf8")
        results = quality.main(
            ["--dataset", "goemotions", "--train-dir", str(tmp), "--n", "8", "--encoder", str(tiny_xlmr_dir),
             "--epochs", "1", "--systems", "tfidf,mlbert", "--out", str(tmp / "go.json")]
        )
        run = dict(json.loads((tmp / "go.json").read_text(encoding="utf8")), _path="go.json")
        diff = report.paired(report.merge([run]), "mlbert", "tfidf", 10)
    assert results["settings"]["labels"] == names
    assert set(results["systems"]["mlbert"]["per_language"]) == {"en"}
    expected = results["systems"]["mlbert"]["average"]["macro_f"] - results["systems"]["tfidf"]["average"]["macro_f"]
    assert diff["difference"] == pytest.approx(expected)


def test_encoder_work_counts_training_forwards_only(tiny_xlmr_dir):
    import time

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_xlmr_dir)
    ids = torch.ones((3, 10), dtype=torch.long)
    mask = torch.ones((3, 10), dtype=torch.long)
    mask[1:, 6:] = 0
    start = time.perf_counter()
    with speed.EncoderWork(tiny_xlmr_dir) as counter:
        model(input_ids=ids, attention_mask=mask)
        with torch.no_grad():  # prediction, as spaCy's held-out scoring: not counted
            model(input_ids=ids, attention_mask=mask)
        middle = time.perf_counter()
        model(ids[:1], mask[:1])
    end = time.perf_counter()
    assert counter.per_epoch([start, middle, end]) == [
        {"rows": 3, "padded_wordpieces": 30, "real_wordpieces": 22},
        {"rows": 1, "padded_wordpieces": 10, "real_wordpieces": 10},
    ]
    assert "forward" not in vars(model) and type(model).forward is counter.original


@pytest.mark.slow
def test_speed_quick_all_sections(tiny_xlmr_dir):
    with make_tempdir() as tmp:
        dev = _speed_texts(tmp)
        results = speed.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--encoder", str(tiny_xlmr_dir), "--quick", "--out", str(tmp / "speed.json")]
        )
    assert results["training"]["spacy_seconds_per_epoch"] > 0
    assert results["training"]["torch_seconds_per_epoch"] > 0
    assert results["training"]["stock_seconds_per_epoch"] > 0
    work = results["training"]["encoder_work_per_epoch"]
    n_texts = results["training"]["n_texts"]
    for name in ("spacy", "torch", "stock"):  # every text seen once per compared epoch
        assert work[name] and all(e["rows"] >= n_texts and e["padded_wordpieces"] >= e["real_wordpieces"] > 0 for e in work[name])
    assert "per 1,000 padded wordpieces" in speed.report(results)
    assert "mlbert / stock" in speed.report(results)
    assert set(results["peak_rss"]) == {"spacy-load", "spacy-infer", "raw-infer", "spacy-train", "torch-train"}
    assert [p["length"] for p in results["length"]] == [64, 256]


def test_gpu_train_epoch_seconds_time_the_last_epoch_without_saving():
    # 3 updates per epoch, one second apart; saving after the last update
    stamps = [(e, 3.0 * e + i) for e in range(2) for i in range(3)]
    assert gpu_train.epoch_seconds(stamps) == [3.0, 3.0]


def test_gpu_train_runs_on_cpu_with_a_tiny_encoder():
    """The GPU script's path (random encoder, spacy train, nlp.pipe) on CPU."""
    with make_tempdir() as d:
        out = gpu_train.main(
            ["--size", "tiny", "--gpu-id", "-1", "--modes", "fp32", "--n-train", "32", "--epochs", "2",
             "--work-dir", str(d / "work"), "--out", str(d / "gpu.json")]
        )
        assert json.loads((d / "gpu.json").read_text())["settings"]["n_train"] == 32
    result = out["results"]["fp32"]
    assert len(result["epoch_seconds"]) == 2
    assert result["train_texts_per_second"] > 0 and result["infer_texts_per_second"] > 0
    assert set(result["example_cats"]) == set(out["settings"]["labels"])
    assert out["settings"]["encoder"]["num_hidden_layers"] == 2


def test_report_merge_checks_what_the_systems_share():
    config = "[paths]\ntrain = null\n\n[components]\n\n[components.mlbert_textcat]\nfactory = \"mlbert_textcat\"\n{extra}\n[training]\nmax_epochs = {epochs}\n"
    settings = {"dataset": "semeval", "langs": ["eng"], "n_per_lang": 600}

    def run(path, system, *, extra="", epochs=4, n=600):
        return {
            "_path": path, "benchmark": "quality", "settings": dict(settings, n_per_lang=n),
            "config_text": config.format(extra=extra, epochs=epochs), "systems": {system: {"average": {}}},
        }

    # experiments differ in the mlbert component by design
    merged = report.merge([run("a", "stock"), run("b", "mlbert-x", extra="pos_weight = \"auto\"\n")])
    assert list(merged["systems"]) == ["stock", "mlbert-x"] and merged["merged_from"] == ["a", "b"]
    with pytest.raises(ValueError, match="outside the mlbert_textcat component"):
        report.merge([run("a", "stock"), run("b", "mlbert", epochs=3)])
    with pytest.raises(ValueError, match="n_per_lang"):
        report.merge([run("a", "stock"), run("b", "mlbert", n=100)])


def test_tfidf_anchor_chooses_on_the_holdout_and_tunes_thresholds(semeval_dirs):
    data = benchlib.load_semeval(semeval_dirs / "train", semeval_dirs / "dev", ["eng", "rus"], 8, zero_shot_langs=["afr"])
    fit, holdout, _ = benchlib.split_holdout(data.train, data.labels, 0.25, 0)
    pred, probs, train_s, predict_s, chosen = benchlib.tfidf_anchor(
        data, fit, holdout, tune_method="exact", c_grid=(0.3, 3.0), ngram_grid=((1, 4), (2, 5))
    )
    assert chosen["mode"] in ("per-language", "joint") and set(chosen["holdout_macro_f_by_mode"]) == {"per-language", "joint"}
    assert set(chosen["other_modes"]) == {"per-language", "joint"} - {chosen["mode"]}
    for unit, model in chosen["models"].items():
        assert model["C"] in (0.3, 3.0) and model["ngram_range"] in ([1, 4], [2, 5])
        assert len(model["grid"]) == 4  # every candidate scored on the holdout
        assert set(chosen["thresholds"][unit]) == set(model["labels"])
    # the decisions are the probabilities at the tuned cuts
    labels = data.labels
    eval_langs = [r.lang for r in data.eval]
    for i, lang in enumerate(eval_langs):
        unit = lang if chosen["mode"] == "per-language" else "joint"
        if unit not in chosen["thresholds"]:
            assert not pred[i].any() and not probs[i].any()  # zero-shot text of per-language models
            continue
        for label, cut in chosen["thresholds"][unit].items():
            j = labels.index(label)
            assert pred[i, j] == float(probs[i, j] >= numpy.float32(cut))
    assert train_s > 0 and predict_s >= 0
    # a forced joint model predicts the zero-shot language too
    _, joint_probs, _, _, joint = benchlib.tfidf_anchor(data, fit, holdout, tune_method="global", mode="joint", c_grid=(1.0,), ngram_grid=((2, 5),))
    assert joint["mode"] == "joint" and "other_modes" not in joint
    afr_rows = [i for i, lang in enumerate(eval_langs) if lang == "afr"]
    assert joint_probs[afr_rows].any()
    assert len(set(joint["thresholds"]["joint"].values())) == 1  # "global": one cut for all labels
    with pytest.raises(ValueError, match="mode"):
        benchlib.tfidf_anchor(data, fit, holdout, tune_method="exact", mode="both")


def test_fit_tfidf_masks_unknown_cells_and_keeps_constant_labels():
    texts = ["good good", "bad bad", "good day", "bad day"]
    y = numpy.asarray([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 1]], dtype="f")
    known = numpy.ones_like(y, dtype=bool)
    known[3, 2] = False  # the one positive of the last label is unknown: nothing to separate
    model = benchlib.fit_tfidf(texts, y, known, ngram_range=(1, 4), C=10.0)
    assert model.classifiers[2] == 0.0
    probs = model.probs(["good", "bad"])
    assert probs.shape == (2, 3) and probs[0, 0] > 0.5 > probs[1, 0] and (probs[:, 2] == 0).all()


def _fake_quality_run(path: str, systems: dict, date: str = "2026-01-01T00:00:00+00:00") -> dict:
    return {"_path": path, "benchmark": "quality", "date": date, "systems": systems}


def test_rerun_timings_median_and_every_rerun():
    runs = [
        _fake_quality_run("a.json", {"mlbert": {"train_seconds": 100.0, "cpu_seconds_whole_system": 180.0, "load_average_before": [2.0]}, "stock": {"train_seconds": 90.0}}),
        _fake_quality_run("b.json", {"mlbert": {"train_seconds": 130.0, "cpu_seconds_whole_system": 200.0, "load_average_before": [1.0]}, "stock": {"train_seconds": 120.0}}),
        _fake_quality_run("c.json", {"mlbert": {"train_seconds": 110.0, "cpu_seconds_whole_system": 190.0}, "stock": {"train_seconds": 100.0}}),
        # scored from a kept model: it trained nothing in this run
        _fake_quality_run("d.json", {"mlbert": {"train_seconds": 0.0, "settings": {"trained_model": "m"}}}),
    ]
    table = benchlib.rerun_timings(runs)
    assert table["mlbert"]["median_train_seconds"] == 110.0 and table["mlbert"]["n_runs"] == 3
    assert table["mlbert"]["median_cpu_seconds"] == 190.0 and table["stock"]["median_cpu_seconds"] is None
    assert [r["path"] for r in table["stock"]["reruns"]] == ["a.json", "b.json", "c.json"]
    text = benchlib.timings_markdown(table)
    assert "| mlbert | 3 | 110 | 190 | 1.10 |" in text  # 110 / 100, the ratio of the medians
    assert text.count("| mlbert | ") == 1 + 3 and "d.json" not in text


def test_report_timings_cli(tmp_path, capsys):
    paths = []
    for i, seconds in enumerate((50.0, 70.0)):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps({"benchmark": "quality", "date": "d", "systems": {"stock": {"train_seconds": seconds}}}), encoding="utf8")
        paths.append(str(path))
    report.main(["--timings", *paths])
    out = capsys.readouterr().out
    assert "| stock | 2 | 60 | - | 1.00 |" in out and paths[1] in out


def test_stock_tuning_is_a_column_and_a_paired_system(semeval_dirs):
    out = semeval_dirs / "anchors.json"
    results = quality.main(_quality_args(semeval_dirs, Path("unused"), out, "--systems", "tfidf"))
    tfidf = results["systems"]["tfidf"]
    assert tfidf["settings"]["tune_method"] == DEFAULT_METHOD and tfidf["settings"]["models"]
    assert "char_wb" in tfidf["description"] and "balanced" in tfidf["description"]
    run = dict(json.loads(out.read_text(encoding="utf8")), _path=str(out))
    # a stock system as run_stock writes it (its training is not needed here)
    n_labels = len(results["settings"]["labels"])
    every = ["1" * n_labels] * len(run["settings"]["eval_ids"])
    stock = dict(tfidf, description="stock", with_tuned_thresholds={
        "thresholds": {}, "tune_method": "bagged", "per_language": {"eng": {"macro_f": 0.123, "micro_f": 0.2}},
        "average": {"macro_f": 0.123, "micro_f": 0.2}, "zero_shot_average": {"macro_f": None, "micro_f": None},
        "predictions": every,
    })
    run["systems"]["stock"] = stock
    table = quality.markdown(run)
    assert "| macro-F1 | tfidf | stock | stock+tuning |" in table and "| eng | " in table and "0.123" in table
    shown = quality.table_systems(run["systems"])
    assert shown["stock+tuning"]["train_seconds"] == stock["train_seconds"] and "with_tuned_thresholds" not in shown["stock+tuning"]
    diff = report.paired(report.merge([run]), "stock+tuning", "tfidf", 20)
    data = benchlib.load_semeval(semeval_dirs / "train", semeval_dirs / "dev", ["eng", "rus"], 8)
    y_true, _ = benchlib.label_arrays(data.eval, data.labels)
    ones = numpy.ones_like(y_true)
    langs = [r.lang for r in data.eval]
    all_positive = benchlib.averages(benchlib.official_scores(y_true, ones, langs, data.labels, data.lang_labels), ["eng", "rus"])
    assert diff["difference"] == pytest.approx(all_positive["macro_f"] - tfidf["average"]["macro_f"])
    assert "stock+tuning" in report.experiments_table([run])


def test_report_trained_languages_only_keeps_shared_texts():
    run = {
        "_path": "r.json",
        "settings": {
            "langs": ["eng"], "zero_shot_langs": ["afr"], "eval_ids": ["e1", "e2", "a1"],
            "eval_texts": {"eng": 2, "afr": 1}, "lang_labels": {"eng": ["joy"], "afr": ["joy"]},
        },
        "systems": {
            "stock": {
                "predictions": ["1", "0", "1"],
                "per_language": {"eng": {}, "afr": {}},
                "with_tuned_thresholds": {"predictions": ["0", "0", "1"], "per_language": {"eng": {}, "afr": {}}},
            }
        },
    }
    trimmed = report.trained_languages_only(run)
    assert trimmed["settings"]["eval_ids"] == ["e1", "e2"]
    assert trimmed["settings"]["zero_shot_langs"] == []
    assert trimmed["systems"]["stock"]["predictions"] == ["1", "0"]
    assert trimmed["systems"]["stock"]["with_tuned_thresholds"]["predictions"] == ["0", "0"]
    assert list(trimmed["systems"]["stock"]["per_language"]) == ["eng"]
    # the run itself is left as it was
    assert run["settings"]["eval_ids"] == ["e1", "e2", "a1"]


def test_long_pooling_counts_fewer_rows_than_v1(tiny_xlmr_dir):
    import long_pooling

    with make_tempdir() as tmp:
        dev = tmp / "dev"
        dev.mkdir()
        for lang in ("eng", "rus"):
            _write_csv(dev / f"{lang}.csv", lang, TEXTS[lang] * 20, LABELS, 0)
        results = long_pooling.main(
            ["--data-dir", str(dev), "--langs", "eng,rus", "--lengths", "300", "--encoder", str(tiny_xlmr_dir), "--out", str(tmp / "lp.json")]
        )
    for point in results["documents"]:
        assert point["windows"] > 1
        assert point["rows_v2"] < point["rows_v1"]  # the special tokens of every window but one
        assert 0.9 < point["cosine_v1_v2"] <= 1.0 + 1e-6


def test_report_over_training_seeds(semeval_dirs):
    """report.py --seeds: each seed's difference, their mean with a pooled
    interval, and macro-F1 by label frequency."""
    out = semeval_dirs / "seeds.json"
    results = quality.main(_quality_args(semeval_dirs, Path("unused"), out, "--systems", "tfidf"))
    run = dict(json.loads(out.read_text(encoding="utf8")), _path=str(out))
    n_labels = len(results["settings"]["labels"])
    every = ["1" * n_labels] * len(run["settings"]["eval_ids"])
    # a second "seed" whose other system says yes to every label
    other = json.loads(json.dumps(run))
    other["systems"]["ones"] = dict(other["systems"]["tfidf"], predictions=every)
    run["systems"]["ones"] = dict(run["systems"]["tfidf"])
    run["settings"]["train_seed"], other["settings"]["train_seed"] = 0, 1
    with pytest.raises(ValueError, match="training seed"):
        report.over_seeds([dict(run, settings=dict(run["settings"], train_seed=None))], "tfidf", "ones", 20)
    result = report.over_seeds([run, other], "tfidf", "ones", 20)
    first, second = (row["difference"] for row in result["per_seed"])
    assert first == 0.0 and second != 0.0
    assert result["mean_difference"] == pytest.approx((first + second) / 2)
    assert result["pooled_bootstrap"]["difference"] == pytest.approx(result["mean_difference"])
    assert result["seed_sd_of_difference"] > 0
    labels = [label for bucket in result["label_frequency"] for label in bucket["labels"]]
    assert sorted(labels) == sorted(results["settings"]["labels"])
    counts = [n for bucket in result["label_frequency"] for n in bucket["train_positives"]]
    assert counts == sorted(counts)  # rare, middle, frequent
    assert "| training seed |" in report.seeds_markdown(result) and "| rare (" in report.seeds_markdown(result)
    # a run without a training seed joins every seed's systems
    anchor = dict(run, settings=dict(run["settings"], train_seed=None), systems={"anchor": run["systems"]["tfidf"]})
    joined = report.over_seeds([run, other, anchor], "tfidf", "anchor", 20)
    assert [row["difference"] for row in joined["per_seed"]] == [0.0, 0.0]
    assert "anchor" in joined["label_frequency"][0]["macro_f"]
    with pytest.raises(ValueError, match="pairs"):
        benchlib.paired_bootstrap(numpy.zeros((2, 1)), [numpy.zeros((2, 1))], [], ["eng"] * 2, ["a"], {"eng": ["a"]}, ["eng"])
