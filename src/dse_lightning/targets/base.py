"""The target-source interface: what a source is given and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
from omegaconf import DictConfig
from torch import nn

from ..data.tasks import TaskSpec
from ..logits import KeyedLogits
from ..results import TeacherResult

if TYPE_CHECKING:
    from ..data.datamodule import GluePairDataModule


@dataclass
class StudentTargets:
    """What the student learns from besides gold labels."""

    logits: KeyedLogits | None = None  # (N, K) in the student's form (binary: z1 - z0), by example id
    online: nn.Module | None = None  # a frozen cross-encoder: pair encodings -> logits (B, C)
    # Train rows without a gold label (id, sentence1, sentence2), and what identifies them (the cache key).
    extra_rows: datasets.Dataset | None = None
    extra_key: str | None = None


@dataclass
class TargetContext:
    cfg: DictConfig
    task: TaskSpec
    teacher: TeacherResult
    data: GluePairDataModule  # the student's data (not set up): the provenance its logits must carry
    rows: dict[str, int]  # rows per split
    run_dir: Path


class TargetSource:
    name = ""
    provides_logits = True  # False: targets come from a teacher run during training (no logits to extend)

    def check(self, cfg: DictConfig) -> None:
        """Refuse options that cannot work together, before any teacher work (default: nothing to refuse)."""

    def describe(self) -> dict:
        """How results.json names the source (student.targets)."""
        return {"source": self.name}

    def build(self, ctx: TargetContext) -> StudentTargets:
        raise NotImplementedError

    def labellers(self, ctx: TargetContext) -> list[TeacherResult]:
        """The teachers whose averaged logits label new pairs (a transfer set): the run's teacher."""
        return [ctx.teacher]
