"""TeacherModule: any Hugging Face encoder as a cross-encoder over `[CLS] s1 [SEP] s2 [SEP]`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from ..data.tasks import TaskSpec
from .optim import configure_adamw

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_cross_encoder(backbone: str | dict, num_labels: int) -> nn.Module:
    """A pretrained model by name/folder, or a random one from a config dict (tests: tiny BERT)."""
    if isinstance(backbone, str):
        return AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=num_labels)
    config = AutoConfig.for_model(**{**backbone, "num_labels": num_labels})
    return AutoModelForSequenceClassification.from_config(config)


class TeacherModule(pl.LightningModule):
    def __init__(
        self,
        task: TaskSpec,
        backbone: str | dict,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.task = task
        self.model = load_cross_encoder(backbone, task.num_labels)
        self.model.train()  # from_pretrained returns eval mode, which would silence dropout in fit
        # One metric set per stage and per evaluation split (MNLI: matched and mismatched).
        self.val_metrics = nn.ModuleList(task.build_metrics("val/", s) for s in task.eval_splits)
        self.test_metrics = nn.ModuleList(task.build_metrics("test/", s) for s in task.eval_splits)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
        return self.model(**inputs).logits  # (B, num_labels)

    def model_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)
        labels = batch["labels"]
        if self.task.type == "regression":
            loss = nn.functional.mse_loss(logits.squeeze(-1), labels)
        else:
            loss = nn.functional.cross_entropy(logits, labels)
        return loss, logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def _eval_step(self, metrics: nn.ModuleList, stage: str, batch: dict, dataloader_idx: int) -> None:
        loss, logits = self.model_step(batch)
        collection = metrics[dataloader_idx]
        collection.update(self.task.metric_input(logits), batch["labels"])
        suffix = self.task.splits[self.task.eval_splits[dataloader_idx]].metric_suffix
        bs = len(batch["ids"])
        self.log(f"{stage}/loss{suffix}", loss, batch_size=bs, add_dataloader_idx=False, sync_dist=True)
        self.log_dict(collection, prog_bar=True, batch_size=bs, add_dataloader_idx=False)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(self.val_metrics, "val", batch, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(self.test_metrics, "test", batch, dataloader_idx)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"ids": batch["ids"], "logits": self(batch).float().cpu()}

    def configure_optimizers(self):
        hp = self.hparams
        return configure_adamw(self, hp.optimizer, hp.scheduler, hp.weight_decay, hp.warmup_ratio)
