"""Several teachers instead of one (`targets=ensemble targets.members=k`): the teacher of the run and k - 1
more, fitted with the next seeds (`teacher.seed` + 1, ...) and stored like it; the student learns their
averaged logits, and a transfer set is labelled by all of them. The ensemble's own dev metrics (of its
averaged dev logits) go into results.json (`student.targets.metrics`), its members' beside them.

A heterogeneous ensemble adds `targets.siamese=s` gold-trained siamese students (targets/siamese.py: the
run's student at alpha 0, seeds `teacher.seed`, + 1, ...): members of another family, other errors.
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
from .siamese import siamese_member

log = logging.getLogger(__name__)


class Ensemble(TargetSource):
    name = "ensemble"
    needs_teacher_model = True

    def __init__(self, members: int = 3, siamese: int = 0, max_members: int = 8) -> None:
        if members < 1 or siamese < 0 or members + siamese < 2:
            raise ValueError(
                f"targets.members={members} (cross-encoders, >= 1) and targets.siamese={siamese} "
                "(gold-trained siamese students, >= 0) must add up to 2 or more (an ensemble of one is "
                "targets=logits)"
            )
        self.members, self.siamese, self.max_members = members, siamese, max_members
        self.metrics, self.keys, self._teachers, self.member_metrics = None, None, None, None

    def check(self, cfg) -> None:
        if self.members + self.siamese > self.max_members:  # each one a model fitted, then run on every pair
            raise ValueError(
                f"targets.members={self.members} + targets.siamese={self.siamese}: over targets.max_members="
                f"{self.max_members} models; raise targets.max_members to lift the limit"
            )
        if cfg.teacher.checkpoint:
            raise ValueError("targets=ensemble fits its members, so it cannot start from teacher.checkpoint")

    def describe(self) -> dict:
        return {
            "source": self.name,
            "members": self.keys,
            "siamese": self.siamese,
            "metrics": self.metrics,
            "member_metrics": self.member_metrics,  # each member's own dev metrics, in `members` order
        }

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
        teachers += [siamese_member(ctx, ctx.cfg.teacher.seed + i) for i in range(self.siamese)]
        self.keys, self._teachers = [t.key for t in teachers], teachers
        self.member_metrics = [t.metrics for t in teachers]
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
