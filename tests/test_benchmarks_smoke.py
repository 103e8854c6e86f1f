"""Smoke tests that keep benchmarks/quality.py, speed.py and gpu_train.py working.

They run the scripts' own entry points on a few synthetic texts with the tiny
test encoder; the figures mean nothing, the wiring and the JSON do. The
full runs (every system, every speed section, peak memory in subprocesses)
are marked slow.
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
    assert "afr" not in systems["tfidf"]["per_language"]  # no floor without training texts
    for system in systems.values():
        for scores in system["per_language"].values():
            assert 0.0 <= scores["macro_f"] <= 1.0 and 0.0 <= scores["micro_f"] <= 1.0
        assert system["train_seconds"] >= 0
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
    # the tuning methods compared on halves of the held-out slice
    cv = threshold_cv.main(
        ["--model", str(model), "--data", str(semeval_dirs / "work" / "holdout.spacy"), "--repeats", "3",
         "--out", str(semeval_dirs / "cv.json")]
    )
    assert set(cv["methods"]) == {"fixed", "exact", "bagged", "smoothed", "global"}
    assert cv["methods"]["exact"]["minus_exact"] == 0.0
    assert all(0.0 <= row["mean_macro_f"] <= 1.0 for row in cv["methods"].values())


def test_speed_quick_inference_matches_raw(tiny_xlmr_dir):
    with make_tempdir() as tmp:
        dev = tmp / "dev"
        dev.mkdir()
        for lang in ("eng", "rus"):
            _write_csv(dev / f"{lang}.csv", lang, TEXTS[lang], LABELS, 0)
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


@pytest.mark.slow
def test_quality_all_systems(semeval_dirs, tiny_xlmr_dir):
    out = semeval_dirs / "all.json"
    results = quality.main(_quality_args(semeval_dirs, tiny_xlmr_dir, out, "--zero-shot-langs", "afr"))
    assert list(results["systems"]) == ["tfidf", "mlbert", "stock", "plain"]
    for name in ("mlbert", "stock", "plain"):
        assert set(results["systems"][name]["per_language"]) == {"eng", "rus", "afr"}
        assert results["systems"][name]["zero_shot_average"]["macro_f"] is not None


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
        dev = tmp / "dev"
        dev.mkdir()
        for lang in ("eng", "rus"):
            _write_csv(dev / f"{lang}.csv", lang, TEXTS[lang], LABELS, 0)
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
