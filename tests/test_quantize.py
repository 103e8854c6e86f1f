"""int8 inference: the ``quantize`` setting, its round trips, its errors, and
``spacy-mlbert quantize``."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from spacy.util import load_model_from_config, registry
from typer.testing import CliRunner

from spacy_mlbert import quantization
from spacy_mlbert.cli import app
from spacy_mlbert.cli.quantize import quantize_model
from spacy_mlbert.layers.int8_modules import RowwiseUint8Embedding
from spacy_mlbert.training.staged import export_encoder
from util import TRAIN_DATA, make_examples, make_nlp, save_tiny_pipeline, transformer_config, write_dev_docbin

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [text for text, _ in TRAIN_DATA] + ["Great value 👍 would buy again!", ""]
# Largest change of a probability (doc.cats) from fp32 to int8 on the tiny
# test encoder (width 32, random weights, 6 training steps), measured on
# these texts: 2.5e-4 for int8, 4.6e-4 for int8-embeddings; the bound leaves
# ten times that for other CPUs' kernels.
FP32_TOLERANCE = 0.005


def cats(nlp):
    return [doc.cats for doc in nlp.pipe(TEXTS)]


def encoder_of(nlp, component="transformer"):
    return nlp.get_pipe(component).model.transformer


def assert_close(left, right, tol):
    for one, other in zip(left, right):
        assert one.keys() == other.keys()
        assert max(abs(one[label] - other[label]) for label in one) <= tol


@pytest.fixture(scope="module")
def model_dir(workdir, tiny_xlmr_dir):
    return save_tiny_pipeline(tiny_xlmr_dir, workdir / "model", steps=6, thresholds={"positive": 0.3, "slow": 0.7})


@pytest.fixture(scope="module")
def fp32_cats(model_dir):
    return cats(spacy.load(model_dir))


@pytest.fixture(scope="module")
def dev_path(workdir):
    return write_dev_docbin(workdir / "dev.spacy")


@pytest.fixture(scope="module")
def int8_dir(model_dir, workdir):
    quantize_model(model_dir, workdir / "int8")
    return workdir / "int8"


@pytest.mark.parametrize("how", ["int8", "int8-embeddings"])
def test_quantize_round_trips_predict_identically(model_dir, fp32_cats, workdir, how):
    nlp = spacy.load(model_dir)
    assert quantization.quantize_pipeline(nlp, how) == ["transformer"]
    assert nlp.config["components"]["transformer"]["model"]["quantize"] == how
    quantized = cats(nlp)
    assert_close(quantized, fp32_cats, FP32_TOLERANCE)
    assert quantized != fp32_cats  # it did run in int8
    nlp.to_disk(workdir / how)
    loaded = spacy.load(workdir / how)
    layer = encoder_of(loaded).encoder.layer[0].attention.self.query
    assert isinstance(layer, torch.ao.nn.quantized.dynamic.Linear)
    assert cats(loaded) == quantized
    from_bytes = load_model_from_config(nlp.config)
    from_bytes.from_bytes(nlp.to_bytes())
    assert cats(from_bytes) == quantized
    # saved in int8: smaller than the fp32 weights
    assert (workdir / how / "transformer" / "model").stat().st_size < (model_dir / "transformer" / "model").stat().st_size


def test_fp32_pipeline_loaded_with_quantize_int8_is_quantized(model_dir, int8_dir):
    nlp = spacy.load(model_dir, config={"components": {"transformer": {"model": {"quantize": "int8"}}}})
    # quantized as it loads, before any prediction
    assert quantization.saved_quantization(encoder_of(nlp).config) == "int8"
    assert cats(nlp) == cats(spacy.load(int8_dir))


@pytest.mark.parametrize("how", ["int8", "int8-embeddings"])
def test_quantize_command_saves_int8_weights_in_the_lean_layout(model_dir, workdir, how):
    from spacy_mlbert.layers.int8_modules import EMBEDDING, LINEAR
    from spacy_mlbert.layers.lean_weights import MAGIC

    quantize_model(model_dir, workdir / f"cmd-{how}", how=how)
    saved = (workdir / f"cmd-{how}" / "transformer" / "model").read_bytes()
    assert saved[: len(MAGIC)] == MAGIC  # the lean layout, not spacy-transformers' torch.save
    kinds = json.loads(_safetensors_metadata(saved)["mlbert_int8_modules"])
    assert kinds["encoder.layer.1.attention.self.query"] == LINEAR
    assert "encoder.layer.1.output.dense" not in kinds  # stays fp32 (quantization.py says why)
    assert (kinds.get("embeddings.word_embeddings") == EMBEDDING) == (how == "int8-embeddings")
    assert len(saved) < (model_dir / "transformer" / "model").stat().st_size
    nlp = spacy.load(workdir / f"cmd-{how}")
    encoder = encoder_of(nlp)
    layer = encoder.encoder.layer[1]
    assert isinstance(layer.attention.self.query, torch.ao.nn.quantized.dynamic.Linear)
    assert isinstance(layer.intermediate.dense, torch.ao.nn.quantized.dynamic.Linear)
    assert type(layer.output.dense) is torch.nn.Linear
    embeddings = encoder.get_input_embeddings()
    assert isinstance(embeddings, RowwiseUint8Embedding) == (how == "int8-embeddings")
    # what is not packed for torch's int8 kernels stays a view of the file's bytes
    assert nlp.get_pipe("transformer").model.layers[0].shims[0]._lean_borrowed
    if how == "int8-embeddings":
        assert not embeddings.int8_weight.untyped_storage().resizable()  # torch.frombuffer's view, not a copy
    reference = spacy.load(model_dir)
    quantization.quantize_pipeline(reference, how)
    assert cats(nlp) == cats(reference)


def _safetensors_metadata(saved: bytes) -> dict:
    """The safetensors header's metadata of a lean-layout file."""
    import struct

    from spacy_mlbert.layers.lean_weights import MAGIC, tensor_views

    (n_rest,) = struct.unpack_from("<Q", saved, len(MAGIC))
    return tensor_views(memoryview(saved)[len(MAGIC) + 8 + n_rest :])[1]


@pytest.mark.parametrize("how", ["int8", "int8-embeddings"])
def test_fp32_weights_under_a_quantize_config_load_quantized(model_dir, workdir, how):
    """What ``quantize`` wrote before it saved int8 weights: fp32 weights
    under a config that says int8, quantized as they load."""
    from spacy_mlbert.layers.lean_weights import MAGIC

    nlp = spacy.load(model_dir)
    quantization.mark_quantized(nlp, how)
    nlp.to_disk(workdir / f"marked-{how}")
    saved = (workdir / f"marked-{how}" / "transformer" / "model").read_bytes()
    assert saved[: len(MAGIC)] == MAGIC
    assert "mlbert_int8_modules" not in _safetensors_metadata(saved)  # fp32 weights
    loaded = spacy.load(workdir / f"marked-{how}")
    assert quantization.saved_quantization(encoder_of(loaded).config) == how
    reference = spacy.load(model_dir)
    quantization.quantize_pipeline(reference, how)
    assert cats(loaded) == cats(reference)


def test_quantize_setting_unknown_value_is_e200(tiny_xlmr_dir):
    config = transformer_config(tiny_xlmr_dir)["model"]
    with pytest.raises(ValueError, match=r"E200.*'int4'"):
        registry.resolve({"model": {**config, "quantize": "int4"}})


def test_training_a_quantized_transformer_is_e201(tiny_xlmr_dir):
    nlp = spacy.blank("xx")
    config = transformer_config(tiny_xlmr_dir)
    config["model"]["quantize"] = "int8"
    nlp.add_pipe("transformer", config=config)
    nlp.add_pipe("mlbert_textcat")
    examples = make_examples(nlp)
    with pytest.raises(ValueError, match=r"E201.*initialize.*Train the fp32 pipeline"):
        nlp.initialize(get_examples=lambda: examples)


def test_updating_or_initializing_a_loaded_quantized_pipeline_fails(int8_dir):
    nlp = spacy.load(int8_dir)
    with pytest.raises(ValueError, match="E202"):
        nlp.update(make_examples(nlp))
    with pytest.raises(ValueError, match="E201"):
        nlp.initialize()


def test_export_encoder_for_staged_training_refuses_quantized(int8_dir, workdir):
    with pytest.raises(ValueError, match=r"E201.*train-staged"):
        export_encoder(int8_dir, workdir / "encoder-q")
    assert not (workdir / "encoder-q").exists()


def test_quantized_on_gpu_is_e203(int8_dir, monkeypatch):
    # what --gpu-id / spacy.require_gpu() make torch's default device
    monkeypatch.setattr(quantization, "get_torch_default_device", lambda: torch.device("cuda", 0))
    with pytest.raises(ValueError, match="E203"):
        spacy.load(int8_dir)


@pytest.mark.gpu
def test_quantized_with_require_gpu_is_e203(int8_dir):
    from thinc.api import require_gpu, require_cpu

    require_gpu()
    try:
        with pytest.raises(ValueError, match="E203"):
            spacy.load(int8_dir)
    finally:
        require_cpu()


def test_config_none_on_int8_weights_is_e205(model_dir, workdir):
    nlp = spacy.load(model_dir)
    quantization.quantize_pipeline(nlp, "int8")
    nlp.to_disk(workdir / "int8-weights")  # saved quantized
    with pytest.raises(ValueError, match="E205"):
        spacy.load(workdir / "int8-weights", config={"components": {"transformer": {"model": {"quantize": "none"}}}})


def test_quantize_model_errors(model_dir, int8_dir, workdir, tiny_xlmr_dir):
    with pytest.raises(ValueError, match="E206"):
        quantize_model(int8_dir, workdir / "twice")
    with pytest.raises(ValueError, match="E200"):
        quantize_model(model_dir, workdir / "none", how="none")
    with pytest.raises(ValueError, match="E056"):
        quantize_model(model_dir, model_dir)
    # spacy-transformers' own architecture has no quantize setting
    nlp = spacy.blank("xx")
    config = transformer_config(tiny_xlmr_dir)
    config["model"]["@architectures"] = "spacy-transformers.TransformerModel.v3"
    nlp.add_pipe("transformer", config=config)
    nlp.add_pipe("mlbert_textcat")
    examples = make_examples(nlp)
    nlp.initialize(get_examples=lambda: examples)
    nlp.to_disk(workdir / "plain")
    with pytest.raises(ValueError, match=r"E204.*transformer, mlbert_textcat"):
        quantize_model(workdir / "plain", workdir / "plain-q")
    assert not any(p.exists() for p in (workdir / "twice", workdir / "none", workdir / "plain-q"))


def test_quantize_own_transformer_of_the_component(model_dir, workdir):
    """A component with its own WordpieceTransformer (listener replaced)."""
    nlp = spacy.load(model_dir)
    nlp.replace_listeners("transformer", "mlbert_textcat", ["model.tok2vec"])
    nlp.remove_pipe("transformer")
    nlp.to_disk(workdir / "own")
    fp32 = cats(nlp)
    result = quantize_model(workdir / "own", workdir / "own-q")
    assert result["components"] == ["mlbert_textcat"]
    loaded = spacy.load(workdir / "own-q")
    assert loaded.config["components"]["mlbert_textcat"]["model"]["tok2vec"]["quantize"] == "int8"
    assert_close(cats(loaded), fp32, FP32_TOLERANCE)
    assert cats(spacy.load(workdir / "own-q")) == cats(loaded)


def test_cli_quantize_keeps_or_refits_thresholds(model_dir, dev_path, workdir):
    runner = CliRunner()
    out = workdir / "cli-int8"
    result = runner.invoke(app, ["quantize", str(model_dir), str(out)])
    assert result.exit_code == 0, result.output
    assert "Kept the calibration and per-label thresholds" in result.output
    kept = spacy.load(out).get_pipe("mlbert_textcat")
    assert kept.thresholds == spacy.load(model_dir).get_pipe("mlbert_textcat").thresholds
    refit = workdir / "cli-int8-dev"
    result = runner.invoke(app, ["quantize", str(model_dir), str(refit), "--dev", str(dev_path), "-b", "4", "-m", "exact"])
    assert result.exit_code == 0, result.output
    assert "Thresholds tuned on 6 documents" in result.output and "Kept" not in result.output
    tuned = spacy.load(refit)
    assert tuned.config["components"]["transformer"]["model"]["quantize"] == "int8"
    assert tuned.get_pipe("mlbert_textcat").calibration != kept.calibration
    result = runner.invoke(app, ["quantize", str(model_dir), str(workdir / "cli-bad"), "-q", "int4"])
    assert result.exit_code == 1 and "[E200]" in result.output and "Traceback" not in result.output


def test_quantized_output_works_with_the_other_commands(int8_dir, dev_path, workdir):
    runner = CliRunner()
    metrics = workdir / "q-metrics.json"
    result = runner.invoke(app, ["evaluate", str(int8_dir), str(dev_path), "--output", str(metrics), "-b", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads(metrics.read_text(encoding="utf8"))["overall"]["n_docs"] == 6
    source = workdir / "in.jsonl"
    texts = [text for text in TEXTS if text]  # annotate refuses empty texts
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8")
    result = runner.invoke(app, ["annotate", str(int8_dir), str(source), str(workdir / "out.jsonl")])
    assert result.exit_code == 0, result.output
    assert len((workdir / "out.jsonl").read_text(encoding="utf8").splitlines()) == len(texts)
    tuned = workdir / "q-tuned"
    result = runner.invoke(app, ["tune-thresholds", str(int8_dir), str(dev_path), "-o", str(tuned), "-b", "4"])
    assert result.exit_code == 0, result.output
    assert quantization.saved_quantization(encoder_of(spacy.load(tuned)).config) == "int8"


def test_spacy_package_copies_a_quantized_pipeline(int8_dir, workdir):
    from spacy.cli.package import package

    (workdir / "packages").mkdir()
    package(int8_dir, workdir / "packages", name="quantized", version="0.0.1", create_sdist=False, force=True)
    folder = workdir / "packages" / "xx_quantized-0.0.1" / "xx_quantized" / "xx_quantized-0.0.1"
    assert cats(spacy.load(folder)) == cats(spacy.load(int8_dir))


def test_annotate_on_ray_takes_a_quantized_pipeline(int8_dir, workdir):
    """Ray's actors load the quantized pipeline from its folder, as the local engine does."""
    pytest.importorskip("ray", reason="the Ray engine needs: pip install 'spacy-mlbert[ray]'")
    from spacy_mlbert.annotate.engines.ray_engine import iter_output_lines

    source = workdir / "ray-in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS) if t), encoding="utf8")
    local = workdir / "ray-local.jsonl"
    result = CliRunner().invoke(app, ["annotate", str(int8_dir), str(source), str(local), "-b", "16"])
    assert result.exit_code == 0, result.output
    out = workdir / "ray-out"
    command = [sys.executable, "-m", "spacy_mlbert", "annotate", str(int8_dir), str(source), str(out)]
    command += ["--engine", "ray", "--actors", "1", "--batch-size", "16"]
    # Ray's workers import this checkout's spacy_mlbert too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n".join(iter_output_lines(out)) + "\n" == local.read_text(encoding="utf8")


def test_rowwise_uint8_embedding_is_torchs_quantized_embedding():
    """The 8-bit word embeddings compute what torch's quantized Embedding
    does, from its weight or from its saved state dict (a quantized
    WordpieceTransformer saved with torch's module loads into this one)."""
    from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

    torch.manual_seed(0)
    holder = torch.nn.Sequential(torch.nn.Embedding(300, 16))
    with quantization._quiet_torch_quantization():
        quantize_dynamic(holder, {"0": float_qparams_weight_only_qconfig}, inplace=True)
    ids = torch.randint(0, 300, (5, 9))
    expected = holder[0](ids)
    rows = RowwiseUint8Embedding.from_quantized(holder[0])
    assert torch.allclose(rows(ids), expected, atol=1e-6)
    empty = RowwiseUint8Embedding(torch.zeros(300, 16, dtype=torch.uint8), torch.ones(300), torch.zeros(300))
    empty.load_state_dict(holder[0].state_dict())
    assert torch.equal(empty(ids), rows(ids))
