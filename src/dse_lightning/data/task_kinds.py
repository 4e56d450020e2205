"""What a task type (binary, multiclass, regression) means for outputs, targets, losses, metrics and
scores: the one place that knows. `TaskSpec.kind` gives the task's; nothing else branches on the type.

Shapes: N / B rows, C classes, K student outputs (1 for binary and regression, C for multiclass).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def one_output(logits: Tensor, what: str) -> Tensor:
    """(B,) or (B, 1) -> (B,); anything else is a caller error."""
    if logits.dim() == 2 and logits.size(-1) == 1:
        return logits.squeeze(-1)
    if logits.dim() == 1:
        return logits
    raise ValueError(f"{what} expects logits of shape (B,) or (B, 1), got {tuple(logits.shape)}")


def reduce_binary_logits(logits: Tensor) -> Tensor:
    """A binary teacher's two logits (N, 2) -> one logit (N,) = z1 - z0, as the reference DSE code distils.

    Nothing is lost: sigmoid(z1 - z0) = exp(z1) / (exp(z0) + exp(z1)) = softmax([z0, z1])[1].
    """
    if logits.dim() != 2 or logits.size(-1) != 2:
        raise ValueError(
            f"reduce_binary_logits expects teacher logits of shape (N, 2), got {tuple(logits.shape)}"
        )
    return logits[:, 1] - logits[:, 0]  # (N,)


class TaskKind:
    """The multiclass behaviour; Binary and Regression change what differs."""

    name = "multiclass"
    class_logits = True  # outputs are class logits: softmax, KL and a label set apply
    label_dtype = torch.long

    def teacher_outputs(self, labels: list[str]) -> int:
        return len(labels)

    def student_outputs(self, labels: list[str]) -> int:
        return len(labels)

    def student_targets(self, teacher_logits: Tensor) -> Tensor:
        """Cross-encoder logits (N, C) -> the student's targets (N, K)."""
        return teacher_logits

    def teacher_logits(self, student_logits: Tensor) -> Tensor:
        """A student head's logits (N, K) -> the cross-encoder's format (N, C) (a siamese ensemble member)."""
        return student_logits

    def metric_input(self, logits: Tensor) -> Tensor:
        """Model outputs -> what the task's torchmetrics take."""
        return logits

    def scores(self, logits: Tensor) -> Tensor:
        """Head logits -> what a user reads: (N,) P(positive) or the score, or (N, C) class probabilities."""
        return logits.softmax(-1)

    def task_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The student's supervised loss on gold labels, mean over the batch."""
        return F.cross_entropy(logits, labels.long())

    def teacher_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits, labels)

    def parse_label(self, raw: str, labels: list[str], score_range: list[float] | None) -> int | float:
        """A label string of a data file -> class index (or score); ValueError says why not."""
        if raw not in labels:
            raise ValueError(f"label '{raw}' is not one of {labels}")
        return labels.index(raw)

    def implausible(self, logits: Tensor, labels: Tensor) -> str | None:
        """Why teacher logits (N, C) plainly do not read as the gold labels (N,), or None: dev accuracy below
        chance, 1/C. A model whose outputs are read in the wrong label order lands there (on a binary task
        it scores 1 - its accuracy), while a weak but rightly read one stays above it."""
        acc = (logits.argmax(-1) == labels).float().mean().item()
        classes = logits.size(-1)
        return f"dev accuracy {acc:.3f} is below chance (1/{classes})" if acc < 1 / classes else None


class Binary(TaskKind):
    name = "binary"

    def student_outputs(self, labels: list[str]) -> int:
        return 1  # the student distils one logit, z1 - z0

    def student_targets(self, teacher_logits: Tensor) -> Tensor:
        return reduce_binary_logits(teacher_logits).unsqueeze(-1)  # (N, 1)

    def teacher_logits(self, student_logits: Tensor) -> Tensor:
        """(N, 1) z -> (N, 2) [0, z]: the same z1 - z0, so student_targets gives z back."""
        z = student_logits.reshape(-1, 1)
        return torch.cat([torch.zeros_like(z), z], dim=-1)

    def metric_input(self, logits: Tensor) -> Tensor:
        """P(class 1), from two logits (B, 2) or one (B, 1) / (B,)."""
        if logits.dim() == 2 and logits.shape[-1] == 2:
            return logits.softmax(-1)[:, 1]
        return logits.reshape(-1).sigmoid()

    def scores(self, logits: Tensor) -> Tensor:
        return logits.squeeze(-1).sigmoid()

    def task_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(one_output(logits, "binary task_loss"), labels.float())


class Regression(TaskKind):
    name = "regression"
    class_logits = False
    label_dtype = torch.float32

    def teacher_outputs(self, labels: list[str]) -> int:
        return 1

    student_outputs = teacher_outputs

    def metric_input(self, logits: Tensor) -> Tensor:
        return logits.reshape(-1)

    def scores(self, logits: Tensor) -> Tensor:
        return logits.squeeze(-1)

    def task_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.mse_loss(one_output(logits, "regression task_loss"), labels.float())

    def teacher_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.mse_loss(logits.squeeze(-1), labels)

    def parse_label(self, raw: str, labels: list[str], score_range: list[float] | None) -> float:
        score = float(raw)  # ValueError for "n/a" and friends
        low, high = score_range or (-math.inf, math.inf)
        if not math.isfinite(score) or not low <= score <= high:
            raise ValueError(f"score {raw} outside {score_range}")
        return score

    def implausible(self, logits: Tensor, labels: Tensor) -> str | None:
        """Scores that do not rise with the gold ones: Pearson r <= 0 (or undefined: constant scores)."""
        r = torch.corrcoef(torch.stack([logits.reshape(-1).double(), labels.double()]))[0, 1].item()
        return None if r > 0 else f"dev Pearson correlation {r:.3f} is not above 0"


TASK_KINDS: dict[str, TaskKind] = {k.name: k() for k in (Binary, TaskKind, Regression)}
