"""MultiTaskDistillModule: one siamese encoder, a head and a loss per task, each batch from one task.

Train batches are `(task, batch)` (data/multitask.py); each task's loss is its own DistillLoss (its task
kind's loss, its teacher's targets), so a regression task and a classification task train side by side.
Dev metrics are logged per task (`val/<task>/<metric>`) and their mean of each task's monitored metric as
`val/score`, which selects the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch import nn

from ..data.multitask import SPLITS, split_index
from ..data.tasks import TaskSpec
from ..losses import DistillLoss
from .components.student import MultiTaskStudent
from .optim import configure_adamw


class Monitored(NamedTuple):
    """What selects a multi-task run's checkpoint (build_trainer reads `monitor` / `monitor_mode`)."""

    monitor: str = "score"
    monitor_mode: str = "max"


class MultiTaskDistillModule(pl.LightningModule):
    def __init__(
        self,
        tasks: dict[str, TaskSpec],
        student: MultiTaskStudent,
        losses: dict[str, DistillLoss],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        head_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["student", "losses"])
        self.tasks, self.student, self.losses = tasks, student, nn.ModuleDict(losses)
        self.student.train()  # pretrained backbones load in eval mode
        self.metrics = nn.ModuleDict({stage: self._collections(stage) for stage in SPLITS})
        self.index = {stage: split_index(tasks, splits) for stage, splits in SPLITS.items()}

    def _collections(self, stage: str) -> nn.ModuleDict:
        """One metric collection per task and evaluation split of `stage` (val: dev; test)."""
        return nn.ModuleDict(
            {
                name: nn.ModuleList(
                    task.build_metrics(f"{stage}/{name}/", s) for s in getattr(task, SPLITS[stage])
                )
                for name, task in self.tasks.items()
            }
        )

    def forward(self, batch: dict[str, Any], task: str) -> torch.Tensor:
        emb = self.student.encode(batch["sentences"])  # (S, D): each distinct sentence once
        return self.student.heads[task](emb[batch["a"]], emb[batch["b"]])  # (B, K)

    def training_step(self, item: tuple[str, dict[str, Any]], batch_idx: int) -> torch.Tensor:
        task, batch = item
        logits = self(batch, task)
        parts = self.losses[task](
            logits, batch["labels"], batch.get("teacher_logits"), batch.get("has_label")
        )
        bs = len(batch["ids"])
        self.log("train/loss", parts["loss"], prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{task}/{k}_loss": parts[k] for k in ("task", "distill")}, batch_size=bs)
        return parts["loss"]

    def _eval_step(self, stage: str, batch: dict, dataloader_idx: int) -> None:
        task, split = self.index[stage][dataloader_idx]
        spec, logits = self.tasks[task], self(batch, task)
        self.metrics[stage][task][split].update(spec.kind.metric_input(logits), batch["labels"])
        suffix = spec.splits[getattr(spec, SPLITS[stage])[split]].metric_suffix
        loss, bs = spec.kind.task_loss(logits, batch["labels"]), len(batch["ids"])
        self.log(
            f"{stage}/{task}/loss{suffix}", loss, batch_size=bs, add_dataloader_idx=False, sync_dist=True
        )

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch, dataloader_idx)

    def _epoch_end(self, stage: str) -> None:
        """Each task's metrics (torchmetrics gathers them from every DDP process), then `<stage>/score`:
        the mean over tasks of each one's monitored metric."""
        monitored = []
        for task, collections in self.metrics[stage].items():
            for collection in collections:
                values = collection.compute()
                collection.reset()
                self.log_dict(values, prog_bar=True)
                key = f"{stage}/{task}/{self.tasks[task].monitor}"
                monitored += [values[key]] if key in values else []
        if monitored:
            self.log(f"{stage}/score", torch.stack(monitored).mean(), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def configure_optimizers(self):
        hp = self.hparams
        # The heads start from random weights while the encoder is pretrained: they may learn faster.
        by_prefix = {"student.heads.": hp.head_lr} if hp.get("head_lr") else None
        return configure_adamw(self, hp.optimizer, hp.scheduler, hp.weight_decay, hp.warmup_ratio, by_prefix)
