"""The frozen teacher scores each train batch's pairs as training goes (slower; for changing train data)."""

from __future__ import annotations

from ..models.teacher_module import TeacherModule
from .base import StudentTargets, TargetContext, TargetSource


class OnlineTeacher(TargetSource):
    name = "online"
    provides_logits = False
    needs_teacher_model = True

    def build(self, ctx: TargetContext) -> StudentTargets:
        module = TeacherModule.load_from_checkpoint(
            ctx.teacher.checkpoint, map_location="cpu", weights_only=False
        )
        return StudentTargets(online=module)  # its forward, so a ready model's output map applies
