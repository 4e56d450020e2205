"""Several teachers instead of one (`targets=ensemble targets.members=k`): the teacher of the run and k - 1
more, fitted with the next seeds (`teacher.seed` + 1, ...) and stored like it; the student learns their
averaged logits, and a transfer set is labelled by all of them. The ensemble's own dev metrics (of its
averaged dev logits) go into results.json (`student.targets.metrics`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from ..logits import KeyedLogits, read_logits
from ..pipeline.teacher import logits_file, run_teacher
from ..results import TeacherResult
from .base import StudentTargets, TargetContext, TargetSource

log = logging.getLogger(__name__)


class Ensemble(TargetSource):
    name = "ensemble"
    needs_teacher_model = True

    def __init__(self, members: int = 3) -> None:
        if members < 2:
            raise ValueError(
                f"targets.members must be >= 2 (an ensemble of one is targets=logits), got {members}"
            )
        self.members, self.metrics, self.keys, self._teachers = members, None, None, None

    def check(self, cfg) -> None:
        if cfg.teacher.checkpoint:
            raise ValueError("targets=ensemble fits its members, so it cannot start from teacher.checkpoint")

    def describe(self) -> dict:
        return {"source": self.name, "members": self.keys, "metrics": self.metrics}

    def labellers(self, ctx: TargetContext) -> list[TeacherResult]:
        """The run's teacher and the others, fitted (or reused from the store) with the next seeds."""
        if self._teachers is not None:
            return self._teachers
        teachers = [ctx.teacher]
        for i in range(1, self.members):
            cfg = ctx.cfg.copy()
            with open_dict(cfg):
                cfg.teacher.seed = ctx.cfg.teacher.seed + i
            pl.seed_everything(cfg.teacher.seed, workers=True)
            teachers.append(run_teacher(cfg, ctx.task, ctx.run_dir / "ensemble" / f"member{i}")[0])
        self.keys, self._teachers = [t.key for t in teachers], teachers
        return teachers

    def _mean(self, ctx: TargetContext, teachers: list[TeacherResult], split: str) -> KeyedLogits:
        """The members' logits of a split (checked against this data), joined by id and averaged."""
        parts = []
        for t in teachers:
            path = Path(t.logits).parent / logits_file(split)
            parts.append(read_logits(path, ctx.data.provenance(t.identity, split)))
        ids = parts[0].ids
        return KeyedLogits(
            ids, torch.stack([p.for_ids(ids) for p in parts]).mean(0), f"ensemble of {len(parts)}"
        )

    def _dev_metrics(self, ctx: TargetContext, teachers: list[TeacherResult]) -> dict[str, float]:
        metrics = {}
        for split in ctx.task.eval_splits:
            mean, rows = self._mean(ctx, teachers, split), ctx.data.raw(split)
            metrics |= ctx.task.evaluate(split, mean.for_ids(list(rows["id"])), rows["label"])
        return metrics

    def build(self, ctx: TargetContext) -> StudentTargets:
        teachers = self.labellers(ctx)
        self.metrics = self._dev_metrics(ctx, teachers)
        log.info(
            "teacher ensemble of %d: dev %s (the run's teacher: %s)",
            len(teachers),
            self.metrics,
            ctx.teacher.metrics,
        )
        return StudentTargets(logits=self._mean(ctx, teachers, "train").map(ctx.task.kind.student_targets))
