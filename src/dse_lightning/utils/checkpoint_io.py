"""Lightning checkpoints written atomically, with a sha256 file verified before a checkpoint is trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from .io import atomic_path, checksum_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """`Trainer(plugins=[AtomicCheckpointIO()])`: every checkpoint (best, last, the teacher's weights) is
    saved to a temp file beside its target and renamed, with `<file>.sha256` beside it (local paths)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path, checksum=True) as tmp:
            torch.save(checkpoint, tmp)

    def remove_checkpoint(self, path) -> None:
        super().remove_checkpoint(path)
        checksum_path(Path(path)).unlink(missing_ok=True)
