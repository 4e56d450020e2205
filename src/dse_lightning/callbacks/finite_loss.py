"""Stop training at the first nan/inf loss, naming where, before it reaches the weights."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


class NonFiniteLossError(FloatingPointError):
    """The training loss became nan or inf; the run stops with the epoch, step and batch."""


class FiniteLossCheck(pl.Callback):
    """Raises NonFiniteLossError in `on_before_backward`: the bad step never updates the weights, and no
    checkpoint holds nan weights, so a resumed run (after a fix) starts from sound ones."""

    def __init__(self) -> None:
        self._batch_idx = -1

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if bool(torch.isfinite(loss).all()):
            return
        value = loss.detach().float().reshape(-1)[0].item()
        raise NonFiniteLossError(
            f"{type(pl_module).__name__}: non-finite loss ({value}) at epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step} (batch {self._batch_idx}); that step's update was not "
            "applied. "
            "Lower the learning rate (teacher.module.optimizer.lr / student.module.optimizer.lr), set "
            "trainer.gradient_clip_val, or check that batch's inputs."
        )
