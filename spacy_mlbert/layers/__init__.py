from .sum_logits import sum_logits
from .transformer import CheckedTransformerModel
from .wordpiece_pooling import POOLINGS, WordpiecePooling

__all__ = ["CheckedTransformerModel", "POOLINGS", "WordpiecePooling", "sum_logits"]
