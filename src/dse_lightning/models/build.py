"""Build a SiameseStudent from its Hydra config and the task."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.tasks import TaskSpec
from .components.student import SiameseStudent


def build_student(student_cfg: DictConfig, task: TaskSpec) -> SiameseStudent:
    """`encoder` is instantiated; `head` is a partial completed with the encoder's width and task outputs."""
    encoder = instantiate(student_cfg.encoder, _convert_="object")
    head = instantiate(student_cfg.head, _partial_=True)(
        embed_dim=encoder.embed_dim, num_outputs=task.num_student_outputs
    )
    return SiameseStudent(encoder, head)
