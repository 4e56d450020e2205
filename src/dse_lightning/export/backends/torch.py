"""The export's encoder as trained, in torch: the reference every other backend is measured against."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class

from ...embeddings.encode import EncodeFn
from .base import Backend


class Torch(Backend):
    name = "torch"
    label = "torch"
    marker = "o"

    def load(self, folder: Path, spec: dict, device: str) -> EncodeFn:
        encoder = get_class(spec["encoder"]["_target_"])  # its own load_export (a SentenceEncoder)
        return encoder.load_export(folder, spec["encoder"], spec["max_length"], device)
