"""The paper's recipe: the teacher's exported train-set logits, checked against this data, joined by id."""

from __future__ import annotations

from ..logits import read_logits
from .base import StudentTargets, TargetContext, TargetSource


class ExportedLogits(TargetSource):
    name = "logits"

    def build(self, ctx: TargetContext) -> StudentTargets:
        expected = ctx.data.provenance(ctx.teacher.identity)
        logits = read_logits(ctx.teacher.logits, expected)
        return StudentTargets(logits=logits.map(ctx.task.kind.student_targets))
