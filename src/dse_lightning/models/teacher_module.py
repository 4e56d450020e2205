"""TeacherModule: any Hugging Face encoder as a cross-encoder over `[CLS] s1 [SEP] s2 [SEP]`: a backbone
given a fresh head of the task's outputs, or a ready fine-tuned model read through an `OutputMap`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from ..data.tasks import TaskSpec
from .base import PairTaskModule
from .teacher_outputs import OutputMap

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_cross_encoder(backbone: str | Mapping, num_labels: int | None) -> nn.Module:
    """A pretrained model by name/folder, or a random one from a config dict (tests: tiny BERT), with a
    fresh head of `num_labels` outputs; None keeps the model's own head (a ready, fine-tuned model)."""
    head = {} if num_labels is None else {"num_labels": num_labels}
    if isinstance(backbone, str):
        return AutoModelForSequenceClassification.from_pretrained(backbone, **head)
    config = AutoConfig.for_model(**{**backbone, **head})
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
        outputs: OutputMap | None = None,  # a ready model's own head, read as the task's logits
    ) -> None:
        super().__init__(task)
        self.save_hyperparameters()
        self.model = load_cross_encoder(backbone, task.num_labels if outputs is None else None)
        self.model.train()  # from_pretrained returns eval mode, which would silence dropout in fit
        self.outputs = outputs
        if outputs is not None:  # a model with the wrong number of outputs is refused before any work
            outputs.check(task, self.model.config.num_labels, str(backbone))

    def _logits(self, encoding: dict[str, Any]) -> torch.Tensor:
        inputs = {k: encoding[k] for k in MODEL_INPUTS if k in encoding}
        logits = self.model(**inputs).logits  # (B, M): the model's own outputs
        return logits if self.outputs is None else self.outputs(logits, self.task)  # (B, num_labels)

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
