"""Plain nn.Modules of the DSE student: pooling, encoders, pair heads and the siamese wrapper."""

from dse_lightning.models.components.encoders import (
    BiLSTMEncoder,
    SentenceEncoder,
    TransformerEncoder,
    load_backbone,
)
from dse_lightning.models.components.heads import ConcatHead, DotHead, PairHead
from dse_lightning.models.components.pooling import Pooling, masked_max, masked_mean
from dse_lightning.models.components.student import MultiTaskStudent, SiameseStudent

__all__ = [
    "BiLSTMEncoder",
    "ConcatHead",
    "DotHead",
    "MultiTaskStudent",
    "PairHead",
    "Pooling",
    "SentenceEncoder",
    "SiameseStudent",
    "TransformerEncoder",
    "load_backbone",
    "masked_max",
    "masked_mean",
]
