"""Build tiny random encoders with real tokenizers, trained here, offline.

The loading code they exercise is the same as for xlm-roberta-base or
bert-base-multilingual-cased; only the sizes differ (2 layers, width 32).
"""
from pathlib import Path
from typing import Iterable

import sentencepiece
import torch
from tokenizers import BertWordPieceTokenizer
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)

TINY_SIZES = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
)
MAX_LENGTH = 128


def build_tiny_xlmr(texts: Iterable[str], output_dir: Path) -> Path:
    """A sentencepiece (unigram) vocabulary trained on ``texts`` + a random XLM-R."""
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = output_dir / "corpus.txt"
    corpus.write_text("\n".join(texts) * 3, encoding="utf8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(output_dir / "sp"),
        vocab_size=400,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    (output_dir / "sp.model").rename(output_dir / "sentencepiece.bpe.model")
    tokenizer = XLMRobertaTokenizerFast(
        vocab_file=str(output_dir / "sentencepiece.bpe.model"), model_max_length=MAX_LENGTH
    )
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH + 2, **TINY_SIZES
    )
    XLMRobertaModel(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def build_tiny_bert(texts: Iterable[str], output_dir: Path) -> Path:
    """A WordPiece vocabulary trained on ``texts`` + a random BERT."""
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator(list(texts), vocab_size=400, min_frequency=1)
    trainer.save_model(str(output_dir))
    tokenizer = BertTokenizerFast(
        vocab_file=str(output_dir / "vocab.txt"),
        do_lower_case=False,
        strip_accents=False,
        model_max_length=MAX_LENGTH,
    )
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH, **TINY_SIZES)
    BertModel(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
