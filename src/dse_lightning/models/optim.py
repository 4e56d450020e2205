"""AdamW parameter groups and the per-step warmup/decay schedule shared by teacher and students."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(
    model: nn.Module, weight_decay: float, lr_by_prefix: dict[str, float] | None = None
) -> list[dict]:
    """Weight decay on weights only: biases and LayerNorm gains are not decayed (BERT recipe).

    Returns [decay, no_decay] groups at the optimizer's lr, then the same pair for each entry of
    `lr_by_prefix`: parameters whose name starts with that prefix get its lr (a randomly initialised
    head learning at 1e-3 while the pretrained encoder moves at 2e-5).
    """
    lrs = [None, *(lr_by_prefix or {}).values()]
    groups = {(lr, nd): [] for lr in lrs for nd in (False, True)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            lr = next((v for k, v in (lr_by_prefix or {}).items() if name.startswith(k)), None)
            groups[(lr, name.endswith(NO_DECAY))].append(param)
    return [
        {"params": params, "weight_decay": 0.0 if no_decay else weight_decay}
        | ({} if lr is None else {"lr": lr})
        for (lr, no_decay), params in groups.items()
        if params or lr is None
    ]


def configure_adamw(
    module: pl.LightningModule,
    optimizer: Callable[..., torch.optim.Optimizer],
    scheduler: Callable | None,
    weight_decay: float,
    warmup_ratio: float,
    lr_by_prefix: dict[str, float] | None = None,
):
    """`optimizer`/`scheduler` are Hydra partials; the schedule steps per optimizer step."""
    opt = optimizer(param_groups(module, weight_decay, lr_by_prefix))
    if scheduler is None:
        return opt
    total = int(module.trainer.estimated_stepping_batches)
    sched = scheduler(opt, num_warmup_steps=int(warmup_ratio * total), num_training_steps=total)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
