from .transformer import CheckedTransformerModel
from .wordpiece_pooling import POOLINGS, WordpiecePooling

__all__ = ["CheckedTransformerModel", "POOLINGS", "WordpiecePooling"]
