"""DistillModule: a siamese student trained on gold labels and the teacher's logits.

loss = (1 - alpha) * task_loss + alpha * distill(student_logits, teacher_logits)   (losses.DistillLoss)
Batches come from the sentence view: the batch's distinct sentences are encoded once and the pairs
index into them, so a sentence shared by several pairs costs one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..data.tasks import TaskSpec
from ..losses import DistillLoss, task_loss
from .base import PairTaskModule
from .components.student import SiameseStudent


class DistillModule(PairTaskModule):
    def __init__(
        self,
        task: TaskSpec,
        student: SiameseStudent,
        loss: DistillLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__(task)
        self.save_hyperparameters(ignore=["student", "loss"])
        self.student = student
        self.student.train()  # pretrained backbones load in eval mode
        self.loss = loss

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        emb = self.student.encode(batch["sentences"])  # (S, D): each distinct sentence once
        return self.student.head(emb[batch["a"]], emb[batch["b"]])  # (B, K)

    def eval_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        # No teacher logits on dev: the evaluation loss is the task loss alone.
        return task_loss(logits, batch["labels"], self.task.type)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        parts = self.loss(logits, batch["labels"], batch.get("teacher_logits"))
        bs = len(batch["ids"])
        self.log("train/loss", parts["loss"], prog_bar=True, batch_size=bs)
        self.log_dict(
            {"train/task_loss": parts["task"], "train/distill_loss": parts["distill"]}, batch_size=bs
        )
        return parts["loss"]
