from .wordpiece_pooling import POOLINGS, WordpiecePooling

__all__ = ["POOLINGS", "WordpiecePooling"]
