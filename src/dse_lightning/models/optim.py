"""AdamW parameter groups and the per-step warmup/decay schedule shared by teacher and students."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: biases and LayerNorm gains are not decayed (BERT recipe)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith(NO_DECAY) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def configure_adamw(
    module: pl.LightningModule,
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable | None,
    weight_decay: float,
    warmup_ratio: float,
):
    """`optimizer`/`scheduler` are Hydra partials; the schedule steps per optimizer step."""
    opt = optimizer(param_groups(module, weight_decay))
    if scheduler is None:
        return opt
    total = int(module.trainer.estimated_stepping_batches)
    sched = scheduler(opt, num_warmup_steps=int(warmup_ratio * total), num_training_steps=total)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
