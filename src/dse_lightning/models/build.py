"""Build a SiameseStudent from its Hydra config and the task."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.tasks import TaskSpec
from ..losses import reduce_binary_logits
from .components.student import SiameseStudent


def build_student(student_cfg: DictConfig, task: TaskSpec) -> SiameseStudent:
    """`encoder` is instantiated; `head` is a partial completed with the encoder's width and task outputs."""
    encoder = instantiate(student_cfg.encoder, _convert_="object")
    head = instantiate(student_cfg.head, _partial_=True)(
        embed_dim=encoder.embed_dim, num_outputs=task.num_student_outputs
    )
    return SiameseStudent(encoder, head)


def teacher_targets(task: TaskSpec, logits: torch.Tensor) -> torch.Tensor:
    """Cross-encoder logits (N, C) -> the student's targets (N, K): binary tasks distil z1 - z0."""
    if task.type == "binary":
        return reduce_binary_logits(logits).unsqueeze(-1)  # (N, 1)
    return logits
