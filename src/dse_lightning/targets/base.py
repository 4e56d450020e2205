"""The target-source interface: what a source is given and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.student_targets import StudentTargets
from ..data.tasks import TaskSpec
from ..results import StudentResult, TeacherResult

__all__ = ["StudentTargets", "TargetContext", "TargetSource"]  # StudentTargets: data/student_targets.py


@dataclass
class TargetContext:
    cfg: DictConfig
    task: TaskSpec
    teacher: TeacherResult
    data: GluePairDataModule  # the student's data (not set up): the provenance its logits must carry
    rows: dict[str, int]  # rows per split
    run_dir: Path
    # The run's student at distill.alpha=0 for a seed, fitted or reused (a siamese ensemble member,
    # targets/siamese.py); given by the distill stage, above this package.
    gold_student: Callable[[int], StudentResult] | None = None


class TargetSource:
    name = ""
    provides_logits = True  # False: targets come from a teacher run during training (no logits to extend)
    # True: it runs or fits the teacher's model (new pairs, folds, members), which a teacher of score files
    # (teacher=scores) does not have; options.py refuses the pair before any work.
    needs_teacher_model = False

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
