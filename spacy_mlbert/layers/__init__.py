from .label_attention import LabelAttention, resize_label_attention
from .multi_sample_dropout import MultiSampleDropout
from .sum_logits import sum_logits
from .transformer import CheckedTransformerModel
from .wordpiece_pooling import POOLINGS, WordpiecePooling

__all__ = [
    "CheckedTransformerModel",
    "LabelAttention",
    "MultiSampleDropout",
    "POOLINGS",
    "WordpiecePooling",
    "resize_label_attention",
    "sum_logits",
]
