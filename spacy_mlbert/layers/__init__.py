from .label_attention import LabelAttention, resize_label_attention
from .sum_logits import sum_logits
from .transformer import CheckedTransformerModel
from .wordpiece_pooling import POOLINGS, WordpiecePooling

__all__ = [
    "CheckedTransformerModel",
    "LabelAttention",
    "POOLINGS",
    "WordpiecePooling",
    "resize_label_attention",
    "sum_logits",
]
