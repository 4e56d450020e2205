"""What the teacher and the student systems share: per-stage, per-split metrics and the step plumbing.

Subclasses give `forward(batch) -> logits` and `eval_loss(logits, batch)`; validation, test and
predict are then the same for both, so teacher and student metrics compare one to one.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..data.tasks import TaskSpec
from .optim import configure_adamw


class PairTaskModule(pl.LightningModule):
    def __init__(self, task: TaskSpec) -> None:
        super().__init__()
        self.task = task
        # One metric set per stage and per evaluation split (MNLI: matched and mismatched).
        self.val_metrics = nn.ModuleList(task.build_metrics("val/", s) for s in task.eval_splits)
        self.test_metrics = nn.ModuleList(task.build_metrics("test/", s) for s in task.test_splits)

    def eval_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def _eval_step(self, metrics: nn.ModuleList, stage: str, batch: dict, dataloader_idx: int) -> None:
        logits = self(batch)
        loss = self.eval_loss(logits, batch)
        collection = metrics[dataloader_idx]
        collection.update(self.task.kind.metric_input(logits), batch["labels"])
        splits = self.task.eval_splits if stage == "val" else self.task.test_splits
        suffix = self.task.splits[splits[dataloader_idx]].metric_suffix
        bs = len(batch["ids"])
        self.log(f"{stage}/loss{suffix}", loss, batch_size=bs, add_dataloader_idx=False, sync_dist=True)
        self.log_dict(collection, prog_bar=True, batch_size=bs, add_dataloader_idx=False)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(self.val_metrics, "val", batch, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(self.test_metrics, "test", batch, dataloader_idx)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"ids": batch["ids"], "logits": self(batch).float().cpu()}

    def lr_by_prefix(self) -> dict[str, float] | None:
        """Parameter-name prefixes trained at their own learning rate; None: one lr for all."""
        return None

    def configure_optimizers(self):
        hp = self.hparams
        return configure_adamw(
            self, hp.optimizer, hp.scheduler, hp.weight_decay, hp.warmup_ratio, self.lr_by_prefix()
        )
