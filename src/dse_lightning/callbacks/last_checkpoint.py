"""`last.ckpt`, the checkpoint a killed run resumes from: every N optimizer steps and after each epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException


class LastCheckpoint(ModelCheckpoint):
    """Writes only `last.ckpt`: every `every_n_train_steps` optimizer steps (a kill mid-epoch loses at most
    that many) and at the end of each epoch, whether or not the monitored metric improved.

    It skips an epoch's last batch: validation follows it and is covered by the checkpoint after it. From
    a checkpoint taken at the last batch, Lightning would resume past that epoch's validation, so a kill
    during validation would change which checkpoint is best.
    """

    def __init__(self, every_n_train_steps: int, **kwargs: Any) -> None:
        super().__init__(every_n_train_steps=every_n_train_steps, save_last=True, save_top_k=0, **kwargs)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """On SIGTERM (a scheduler's preemption), which Lightning raises between batches: save where the
        run stands, unless validation is due or running (the checkpoint before it covers that)."""
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if isinstance(exception, SIGTERMException) and trainer.training and not last_batch:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    # At the end of each epoch, in the hook ModelCheckpoint saves in (so after the best checkpoint's
    # callback, whose state it then holds), and always: not only when a best checkpoint was saved.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(
            trainer
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
