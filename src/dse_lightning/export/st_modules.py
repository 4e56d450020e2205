"""A sentence-transformers module for the DSE pooling, so a `dse` export is a SentenceTransformer folder.

`SentenceTransformer(export_dir)` imports this class by the path written in modules.json.
"""

from __future__ import annotations

import torch
from sentence_transformers.base.modules import Module

from ..models.components.pooling import Pooling


class DSEPooling(Module):
    """all_layer_embeddings + attention_mask -> sentence_embedding, with `Pooling` (top-k means, ...)."""

    config_keys = ["mode", "k", "exclude_cls"]

    def __init__(self, mode: str = "top_k_mean", k: int = 4, exclude_cls: bool = True) -> None:
        super().__init__()
        self.mode, self.k, self.exclude_cls = mode, k, exclude_cls
        self.pooling = Pooling(mode=mode, k=k, exclude_cls=exclude_cls)

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        hidden = features["all_layer_embeddings"]  # (layers + 1) x (B, L, H)
        features["sentence_embedding"] = self.pooling(hidden, features["attention_mask"])
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)  # no weights: pooling is parameter-free
