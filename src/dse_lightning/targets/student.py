"""A distilled student's export as the source of the logits (`targets=student targets.export=<run>/student/
export`): a shallower student learns the scores of a deeper one instead of the cross-encoder's.

On STS-B the 6-layer `dse` + pairs student (0.88 dev) is better than the cross-encoder it was distilled from
(0.84): a 3-layer student of it learns its hidden states (`intermediate=hidden`) and, with this source, its
outputs too (TinyBERT's prediction-layer distillation from the model it compresses). The export scores the
train and eval rows (stored under its weights and the data) and labels a transfer set's pairs;
`targets.teacher=true` averages the run's cross-encoder in (an ensemble of the two).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..results import TeacherResult
from ..utils.portable import portable_path
from .base import TargetContext
from .ensemble import Ensemble
from .siamese import export_member

OPTION = "targets.export="


class StudentExport(Ensemble):
    name = "student"
    needs_teacher_model = False  # without a transfer set it reads the export only (teacher=scores works too)

    def __init__(self, export: str, teacher: bool = False) -> None:  # not Ensemble's: no members to count
        self.export, self.teacher = str(export), bool(teacher)
        self.metrics, self.keys, self._teachers, self.member_metrics = None, None, None, None

    def check(self, cfg: DictConfig) -> None:
        if not (Path(self.export) / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{OPTION}{self.export}: no student export there (a folder with manifest.json, as "
                "<run>/student/export)"
            )

    def describe(self) -> dict:
        return {
            "source": self.name,
            "export": portable_path(self.export),
            "teacher": self.teacher,  # the run's cross-encoder averaged in
            "members": self.keys,
            "metrics": self.metrics,
            "member_metrics": self.member_metrics,
        }

    def labellers(self, ctx: TargetContext) -> list[TeacherResult]:
        """The export (and, with `teacher`, the run's cross-encoder first)."""
        if self._teachers is not None:
            return self._teachers
        member = export_member(ctx, self.export, OPTION)
        member.metrics = self._dev_metrics(ctx, [member])
        teachers = ([ctx.teacher] if self.teacher else []) + [member]
        self.keys, self._teachers = [t.key for t in teachers], teachers
        self.member_metrics = [t.metrics for t in teachers]
        return teachers
