"""Build a SiameseStudent from its Hydra config and the task."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.tasks import TaskSpec
from .components.student import MultiTaskStudent, SiameseStudent


def build_student(student_cfg: DictConfig, task: TaskSpec) -> SiameseStudent:
    """`encoder` is instantiated; `head` is a partial completed with the encoder's width and task outputs."""
    encoder = instantiate(student_cfg.encoder, _convert_="object")
    head = instantiate(student_cfg.head, _partial_=True)(
        embed_dim=encoder.embed_dim, num_outputs=task.num_student_outputs
    )
    return SiameseStudent(encoder, head)


def build_multitask_student(student_cfg: DictConfig, tasks: dict[str, TaskSpec]) -> MultiTaskStudent:
    """One encoder, and the configured head once per task with that task's outputs."""
    encoder = instantiate(student_cfg.encoder, _convert_="object")
    make_head = instantiate(student_cfg.head, _partial_=True)
    heads = {
        n: make_head(embed_dim=encoder.embed_dim, num_outputs=t.num_student_outputs) for n, t in tasks.items()
    }
    return MultiTaskStudent(encoder, heads)
