"""Distillation losses: (1 - alpha) * task_loss + alpha * term(student_logits, teacher_logits).

One class per distillation term, chosen by `distill=<name>` (conf/distill/<name>.yaml names the class):
a new loss is a `DistillLoss` subclass with a `term` and one YAML file. The task loss comes from the task's
kind (data/task_kinds.py). Rows without a gold label (pairs only the teacher labelled) count in the
distillation term only.

Shapes: B = batch size, C = classes, K = distilled outputs. A binary task has ONE student output (B, 1);
its teacher's two logits were reduced to one (TaskKind.student_targets) before they reach a loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.task_kinds import TaskKind


def _as_matrix(x: Tensor) -> Tensor:
    """(B,) -> (B, 1); (B, K) unchanged, so one-output and K-output cases share code."""
    return x.unsqueeze(-1) if x.dim() == 1 else x


def _same_shape(name: str, student: Tensor, teacher: Tensor) -> None:
    if student.shape != teacher.shape:
        raise ValueError(f"{name}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")


def distill_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Squared error summed over the K outputs, then averaged over the batch: the reference DSE reduction,
    NOT F.mse_loss's mean over all B*K elements (they differ by a factor K for multiclass)."""
    student, teacher = _as_matrix(student), _as_matrix(teacher)  # (B, K) each
    _same_shape("distill_mse", student, teacher)
    return (student - teacher).pow(2).sum(dim=-1).mean()


def _two_class(logits: Tensor) -> Tensor:
    """One logit z per row -> the equivalent two-class logits [0, z] (B, 2); (B, C>1) unchanged."""
    logits = _as_matrix(logits)
    if logits.size(-1) == 1:
        return torch.cat([torch.zeros_like(logits), logits], dim=-1)
    return logits


def distill_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2, averaged over the batch.

    The T^2 factor (Hinton et al. 2015) keeps gradient magnitudes comparable across temperatures.
    One-logit inputs (binary) are read as [0, z], since softmax([0, z])[1] = sigmoid(z).
    """
    student, teacher = _two_class(student), _two_class(teacher)  # (B, C) each
    _same_shape("distill_kl", student, teacher)
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * temperature**2


class DistillLoss(nn.Module):
    """The mix; subclasses give `term`. alpha = 0: labels only (no teacher needed); 1: teacher only."""

    name = ""

    def __init__(self, kind: TaskKind, alpha: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distill.alpha must be in [0, 1], got {alpha}")
        self.kind, self.alpha = kind, float(alpha)

    @classmethod
    def refusal(cls, kind: TaskKind, task: str | None = None) -> str | None:
        """Why this loss cannot distil a task of `kind` (None: it can); `task` names the task in the message.
        options.py asks before any work; the constructor raises it for library callers."""
        return None

    def term(self, student: Tensor, teacher: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        """How results.json names the loss."""
        return {"kind": self.name}

    def _task(self, logits: Tensor, labels: Tensor, has_label: Tensor | None) -> Tensor:
        if has_label is None or bool(has_label.all()):
            return self.kind.task_loss(logits, labels)
        if not has_label.any():
            return logits.new_zeros(())
        return self.kind.task_loss(logits[has_label], labels[has_label])

    def forward(
        self,
        logits: Tensor,
        labels: Tensor,
        teacher_logits: Tensor | None = None,
        has_label: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """{"loss", "task", "distill"} scalars; `has_label` (B,): the rows with a gold label (None: all)."""
        task = self._task(logits, labels, has_label)
        if teacher_logits is None:
            if self.alpha > 0:
                raise ValueError(
                    f"distill.alpha={self.alpha} > 0 needs teacher logits; pass them or set alpha=0"
                )
            distill = task.new_zeros(())
        else:
            distill = self.term(logits, teacher_logits.detach())  # targets: nothing flows into the teacher
        loss = (1.0 - self.alpha) * task + self.alpha * distill
        return {"loss": loss, "task": task, "distill": distill}

    def extra_repr(self) -> str:
        return f"task={self.kind.name}, alpha={self.alpha}, {self.describe()}"


class MSE(DistillLoss):
    """Squared error to the teacher's logits (the DSE paper; Tang et al. 2019)."""

    name = "mse"

    def term(self, student: Tensor, teacher: Tensor) -> Tensor:
        return distill_mse(student, teacher)


class KL(DistillLoss):
    """KL between the softened class distributions at temperature T (Hinton et al. 2015)."""

    name = "kl"

    def __init__(self, kind: TaskKind, alpha: float = 0.5, temperature: float = 1.0) -> None:
        super().__init__(kind, alpha)
        if why := self.refusal(kind):
            raise ValueError(why)
        if temperature <= 0:
            raise ValueError(f"distill.temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    @classmethod
    def refusal(cls, kind: TaskKind, task: str | None = None) -> str | None:
        if kind.class_logits:
            return None
        named = f" ({task})" if task else ""
        return f"distill={cls.name}: a {kind.name} task{named} has no class logits; use distill=mse or auto"

    def describe(self) -> dict:
        return {"kind": self.name, "temperature": self.temperature}

    def term(self, student: Tensor, teacher: Tensor) -> Tensor:
        return distill_kl(student, teacher, self.temperature)


def auto(kind: TaskKind, alpha: float = 0.5, temperature: float = 2.0) -> DistillLoss:
    """KL at `temperature` on class logits, MSE for regression (one real-valued output has no softmax)."""
    return KL(kind, alpha, temperature) if kind.class_logits else MSE(kind, alpha)
