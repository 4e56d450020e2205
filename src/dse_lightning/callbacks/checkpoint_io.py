"""Lightning checkpoints written atomically, each entered in its folder's manifest (store.record_file)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ..store import forget_file, record_file
from ..utils.io import atomic_path, sha256_file


def _record(path: Path, tmp: Path) -> None:
    record_file(path, sha256_file(tmp))


class AtomicCheckpointIO(TorchCheckpointIO):
    """`Trainer(plugins=[AtomicCheckpointIO()])`: every checkpoint (best, last, the teacher's weights) is
    saved to a temp file beside its target and renamed, its sha256 in the folder's `manifest.json`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        # Into a file object of ours: a full disk then raises OSError (hence ArtifactWriteError naming the
        # path); given a path, torch's own writer raised RuntimeError("basic_ios::clear: iostream error").
        with atomic_path(path, before_rename=partial(_record, Path(path))) as tmp, open(tmp, "wb") as fh:
            torch.save(checkpoint, fh)

    def remove_checkpoint(self, path) -> None:
        super().remove_checkpoint(path)
        forget_file(Path(path))
