"""Plain nn.Modules of the DSE student: pooling, encoders, pair heads and the siamese wrapper."""

from dse_lightning.models.components.encoders import BiLSTMEncoder, TransformerEncoder, load_backbone
from dse_lightning.models.components.heads import ConcatHead, DotHead
from dse_lightning.models.components.pooling import Pooling, masked_max, masked_mean
from dse_lightning.models.components.student import SiameseStudent, build_head

__all__ = [
    "BiLSTMEncoder",
    "ConcatHead",
    "DotHead",
    "Pooling",
    "SiameseStudent",
    "TransformerEncoder",
    "build_head",
    "load_backbone",
    "masked_max",
    "masked_mean",
]
