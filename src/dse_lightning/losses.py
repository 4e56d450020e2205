"""Tensor math of every DSE loss: task losses, distillation terms and their mix.

Nothing here knows about models or data; every function takes logits and targets and returns a
scalar, so each can be checked by hand in tests/test_losses.py.

Shapes: B = batch size, C = number of classes, K = number of outputs being distilled.
A binary task has ONE student output (B,) or (B, 1); its teacher's two logits are reduced to one
with `reduce_binary_logits` before they ever reach `DistillLoss`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TaskType = Literal["binary", "multiclass", "regression"]
DistillKind = Literal["mse", "kl"]


def resolve_kind(kind: str, task_type: TaskType) -> DistillKind:
    """`auto` is kl for class logits and mse for regression (one real-valued output has no softmax)."""
    if kind == "auto":
        return "mse" if task_type == "regression" else "kl"
    return kind


def reduce_binary_logits(logits: Tensor) -> Tensor:
    """Reduce a binary teacher's two logits (N, 2) to one logit (N,) = z1 - z0.

    The reference DSE code distils a single score per pair for binary tasks. Nothing is lost:
    sigmoid(z1 - z0) = 1 / (1 + exp(z0 - z1)) = exp(z1) / (exp(z0) + exp(z1)) = softmax([z0, z1])[1],
    so the reduced logit gives the same positive-class probability as the teacher's softmax.
    """
    if logits.dim() != 2 or logits.size(-1) != 2:
        raise ValueError(
            f"reduce_binary_logits expects teacher logits of shape (N, 2), got {tuple(logits.shape)}"
        )
    return logits[:, 1] - logits[:, 0]  # (N,)


def _single_output(logits: Tensor, name: str) -> Tensor:
    """Accept (B,) or (B, 1) and return (B,); anything else is a caller error."""
    if logits.dim() == 2 and logits.size(-1) == 1:
        return logits.squeeze(-1)
    if logits.dim() == 1:
        return logits
    raise ValueError(f"{name} expects logits of shape (B,) or (B, 1), got {tuple(logits.shape)}")


def _as_matrix(x: Tensor) -> Tensor:
    """(B,) -> (B, 1); (B, K) unchanged, so one-output and K-output cases share code."""
    return x.unsqueeze(-1) if x.dim() == 1 else x


def task_loss(logits: Tensor, labels: Tensor, task_type: TaskType) -> Tensor:
    """Supervised loss on gold labels (mean over the batch).

    binary: BCE-with-logits on one logit (B,) / (B, 1), labels 0/1.
    multiclass: cross-entropy on (B, C) logits, integer labels (B,).
    regression: MSE between the score (B,) / (B, 1) and the float label (B,).
    """
    if task_type == "binary":
        return F.binary_cross_entropy_with_logits(_single_output(logits, "binary task_loss"), labels.float())
    if task_type == "multiclass":
        return F.cross_entropy(logits, labels.long())
    if task_type == "regression":
        return F.mse_loss(_single_output(logits, "regression task_loss"), labels.float())
    raise ValueError(f"Unknown task_type {task_type!r}; expected one of {get_args(TaskType)}")


def distill_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Squared error summed over the K outputs, then averaged over the batch.

    This is the reference DSE reduction: sum_k (s_bk - t_bk)^2 averaged over b, i.e. NOT
    F.mse_loss's mean over all B*K elements (they differ by a factor K for multiclass).
    Accepts (B,) or (B, K); (B,) and (B, 1) are interchangeable.
    """
    student, teacher = _as_matrix(student), _as_matrix(teacher)  # (B, K) each
    if student.shape != teacher.shape:
        raise ValueError(
            f"distill_mse: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ"
        )
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
    One-logit inputs (binary) are read as the two-class logits [0, z], since softmax([0, z])[1] = sigmoid(z).
    """
    student, teacher = _two_class(student), _two_class(teacher)  # (B, C) each
    if student.shape != teacher.shape:
        raise ValueError(
            f"distill_kl: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ"
        )
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


class DistillLoss(nn.Module):
    """total = (1 - alpha) * task_loss(labels) + alpha * distill(teacher_logits).

    alpha = 0 is plain supervised training (no teacher needed); alpha = 1 is pure distillation,
    which is what DSE uses.
    """

    def __init__(
        self,
        task_type: TaskType,
        alpha: float = 0.5,
        kind: DistillKind | Literal["auto"] = "mse",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        kind = resolve_kind(kind, task_type)
        if task_type not in get_args(TaskType):
            raise ValueError(f"DistillLoss: unknown task_type {task_type!r}; expected {get_args(TaskType)}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"DistillLoss: alpha must be in [0, 1], got {alpha}")
        if kind not in get_args(DistillKind):
            valid = (*get_args(DistillKind), "auto")
            raise ValueError(f"DistillLoss: unknown kind {kind!r}; expected one of {valid}")
        if temperature <= 0:
            raise ValueError(f"DistillLoss: temperature must be > 0, got {temperature}")
        if kind == "kl" and task_type == "regression":
            raise ValueError("DistillLoss: kind='kl' needs class logits; use kind='mse' for regression")
        self.task_type = task_type
        self.alpha = alpha
        self.kind = kind
        self.temperature = temperature

    def forward(
        self, student_logits: Tensor, labels: Tensor, teacher_logits: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Return {"loss", "task", "distill"} scalars.

        The distill term is computed whenever teacher logits are given (useful to log even at
        alpha = 0) and reported as 0 otherwise; alpha > 0 without teacher logits is an error.
        """
        task = task_loss(student_logits, labels, self.task_type)
        if teacher_logits is None:
            if self.alpha > 0:
                raise ValueError(
                    f"DistillLoss: alpha={self.alpha} > 0 needs teacher_logits; pass them or set alpha=0"
                )
            distill = task.new_zeros(())
        else:
            # Teacher logits are targets, never something to backpropagate into.
            teacher_logits = teacher_logits.detach()
            if self.kind == "mse":
                distill = distill_mse(student_logits, teacher_logits)
            else:
                distill = distill_kl(student_logits, teacher_logits, self.temperature)
        loss = (1.0 - self.alpha) * task + self.alpha * distill
        return {"loss": loss, "task": task, "distill": distill}

    def extra_repr(self) -> str:
        return f"task_type={self.task_type}, alpha={self.alpha}, kind={self.kind}, T={self.temperature}"
