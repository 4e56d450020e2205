"""DistillModule: a siamese student trained on gold labels and the teacher's logits.

loss = (1 - alpha) * task_loss + alpha * distill(student_logits, teacher_logits)   (losses.DistillLoss)
       [+ weight * intermediate(student hidden states, a frozen source's)]   (components/intermediate.py)
       [+ attention_weight * KL(the source's attention distributions || the student's)]
Batches come from the sentence view: the batch's distinct sentences are encoded once and the pairs
index into them, so a sentence shared by several pairs costs one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..data.tasks import TaskSpec
from ..losses import DistillLoss
from .base import PairTaskModule
from .components.intermediate import ATTENTION, HiddenStateMatch
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
        teacher: nn.Module | None = None,
        head_lr: float | None = None,
        intermediate: HiddenStateMatch | None = None,
    ) -> None:
        super().__init__(task)
        self.save_hyperparameters(ignore=["student", "loss", "teacher", "intermediate"])
        self.student = student
        self.student.train()  # pretrained backbones load in eval mode
        self.loss = loss
        # Online targets: a frozen TeacherModule scores each train batch's pairs (batch["pair"]).
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        self.intermediate = intermediate
        if intermediate is not None:
            backbone = getattr(student.encoder, "backbone", None)
            if not hasattr(student.encoder, "encode_states"):
                raise ValueError(
                    "intermediate: hidden states to match need a transformer student (student=dse)"
                )
            intermediate.check(backbone)
            if intermediate.attentions:  # sdpa returns no weights, eager returns them after dropout
                backbone.set_attn_implementation(ATTENTION)

    def lr_by_prefix(self) -> dict[str, float] | None:
        # The pair head starts from random weights while the encoder is pretrained: it may learn faster.
        return {"student.head.": self.hparams.head_lr} if self.hparams.get("head_lr") else None

    def train(self, mode: bool = True) -> DistillModule:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # frozen: no dropout, whatever Lightning asks of the module
        return self

    def _targets(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if "teacher_logits" in batch or self.teacher is None:
            return batch.get("teacher_logits")
        # TeacherModule.forward: task-space logits (B, C), a ready model's output map included.
        with torch.no_grad():
            return self.task.kind.student_targets(self.teacher(batch["pair"]))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        emb = self.student.encode(batch["sentences"])  # (S, D): each distinct sentence once
        return self.student.head(emb[batch["a"]], emb[batch["b"]])  # (B, K)

    def eval_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        # No teacher logits on dev: the evaluation loss is the task loss alone.
        return self.task.kind.task_loss(logits, batch["labels"])

    def _logits_and_intermediate(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict | None]:
        if self.intermediate is None:
            return self(batch), None
        features = batch["sentences"]
        emb, states, attentions = self.student.encoder.encode_states(
            features["input_ids"],
            features["attention_mask"],
            features.get("token_type_ids"),
            attentions=self.intermediate.attentions,
        )
        terms = self.intermediate(states, features, attentions)
        return self.student.head(emb[batch["a"]], emb[batch["b"]]), terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, terms = self._logits_and_intermediate(batch)
        parts = self.loss(logits, batch["labels"], self._targets(batch), batch.get("has_label"))
        bs = len(batch["ids"])
        logged = {"train/task_loss": parts["task"], "train/distill_loss": parts["distill"]}
        loss = parts["loss"]
        if terms is not None:
            loss = loss + self.intermediate.total(terms)
            logged["train/intermediate_loss"] = terms["hidden"]
            if "attention" in terms:
                logged["train/attention_loss"] = terms["attention"]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict(logged, batch_size=bs)
        return loss
