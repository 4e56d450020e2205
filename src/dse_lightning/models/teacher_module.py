"""TeacherModule: any Hugging Face encoder as a cross-encoder over `[CLS] s1 [SEP] s2 [SEP]`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from ..data.tasks import TaskSpec
from .base import PairTaskModule

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_cross_encoder(backbone: str | Mapping, num_labels: int) -> nn.Module:
    """A pretrained model by name/folder, or a random one from a config dict (tests: tiny BERT)."""
    if isinstance(backbone, str):
        return AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=num_labels)
    config = AutoConfig.for_model(**{**backbone, "num_labels": num_labels})
    return AutoModelForSequenceClassification.from_config(config)


class TeacherModule(PairTaskModule):
    def __init__(
        self,
        task: TaskSpec,
        backbone: str | Mapping,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__(task)
        self.save_hyperparameters()
        self.model = load_cross_encoder(backbone, task.num_labels)
        self.model.train()  # from_pretrained returns eval mode, which would silence dropout in fit

    def _logits(self, encoding: dict[str, Any]) -> torch.Tensor:
        inputs = {k: encoding[k] for k in MODEL_INPUTS if k in encoding}
        return self.model(**inputs).logits  # (B, num_labels)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, num_labels); a batch with both sentence orders (teacher.both_orders) gets their mean."""
        logits = self._logits(batch)
        if "swapped" in batch:
            logits = (logits + self._logits(batch["swapped"])) / 2
        return logits

    def eval_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return self.task.kind.teacher_loss(logits, batch["labels"])

    def model_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss over the batch's rows, each order its own example when both are given (as training on
        the train set with every pair added swapped: sentence-transformers' CrossEncoder STS-B recipe)."""
        logits = self._logits(batch)
        loss = self.eval_loss(logits, batch)
        if "swapped" in batch:
            loss = (loss + self.eval_loss(self._logits(batch["swapped"]), batch)) / 2
        return loss, logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss
