"""How a ready cross-encoder's outputs read as the task's logits: `teacher.outputs` (conf/teacher/outputs/).

A fine-tuned model keeps its own head. It may list the task's labels in another order (an NLI model trained
as contradiction, entailment, neutral), give a binary task one logit z with P(label 1) = sigmoid(z), or a
regression task a score on its own scale (0..1 through a sigmoid: sentence-transformers' STS-B models).
An `OutputMap` turns the model's outputs (B, M) into the logits a teacher of the task gives (B, num_labels),
inside `TeacherModule.forward`: fine-tuning, dev metrics, exported logits, transfer-set labels and the online
teacher all see task-space logits. A map refuses a model with the wrong number of outputs before any work;
once the teacher has predicted dev, `problem` says when the reading is plainly wrong (`TaskKind.implausible`).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from ..data.tasks import TaskSpec

CHOICES = "classes (a logit per label), one_logit (a binary model's one logit), score (one regression score)"


class OutputMap:
    """A plain object (no weights): it travels in a TeacherModule's hyperparameters and checkpoints."""

    name = ""

    def model_outputs(self, task: TaskSpec) -> int:
        """How many outputs the model must have."""
        raise NotImplementedError

    def refusal(self, task: TaskSpec) -> str | None:
        """Why this reading cannot serve `task` (its type, or a bad option), or None."""
        return None

    def __call__(self, outputs: Tensor, task: TaskSpec) -> Tensor:
        """The model's outputs (B, M) -> the task's logits (B, task.num_labels)."""
        raise NotImplementedError

    def hint(self, task: TaskSpec, logits: Tensor, labels: Tensor) -> str:
        """What to try when the reading is plainly wrong on dev: logits (N, C), labels (N,)."""
        return ""

    def check(self, task: TaskSpec, found: int, model: str) -> None:
        """Refuse, naming the options, a model of `found` outputs that cannot be read this way."""
        if why := self.refusal(task):
            raise ValueError(f"teacher/outputs={self.name}: {why}")
        if found != (expected := self.model_outputs(task)):
            raise ValueError(
                f"teacher.model={model} has {found} output(s) but teacher/outputs={self.name} reads "
                f"{expected} for task {task.name}: choose the teacher/outputs that fits the model: {CHOICES}"
            )

    def problem(self, task: TaskSpec, logits: Tensor, labels: Tensor) -> str | None:
        """Why the task-space dev logits (N, C) say this reading is plainly wrong, or None."""
        if (why := task.kind.implausible(logits, labels)) is None:
            return None
        options = ", ".join(f"teacher.outputs.{k}={v}" for k, v in vars(self).items())
        return f"teacher/outputs={self.name} ({options}): {why}{self.hint(task, logits, labels)}"


class ClassLogits(OutputMap):
    """One logit per label; `labels` names the task's labels in the model's output order (None: the task's
    own order, `labels` of conf/task/<task>.yaml)."""

    name = "classes"

    def __init__(self, labels: list | None = None) -> None:
        self.labels = None if labels is None else [str(label) for label in labels]

    def refusal(self, task: TaskSpec) -> str | None:
        if not task.kind.class_logits:
            return f"task {task.name} is a {task.type} task: read the model with teacher/outputs=score"
        if self.labels is not None and sorted(self.labels) != sorted(task.labels):
            return (
                f"teacher.outputs.labels={self.labels} must name each label of task {task.name} "
                f"({task.labels}) once, in the order of the model's outputs"
            )
        return None

    def model_outputs(self, task: TaskSpec) -> int:
        return len(task.labels)

    def order(self, task: TaskSpec) -> list[int]:
        """The model output that is each task label, in the task's label order."""
        return [(self.labels or task.labels).index(label) for label in task.labels]

    def __call__(self, outputs: Tensor, task: TaskSpec) -> Tensor:
        return outputs[:, self.order(task)]  # (B, C)

    def hint(self, task: TaskSpec, logits: Tensor, labels: Tensor) -> str:
        """The best relabelling of the outputs on dev, as the `teacher.outputs.labels` to give."""
        classes = logits.size(-1)
        if classes > 8:  # 8! orders at most
            return ""
        accuracy = lambda p: (logits[:, list(p)].argmax(-1) == labels).float().mean().item()  # noqa: E731
        best = max(itertools.permutations(range(classes)), key=accuracy)
        # Task label i read from the column best[i], i.e. from model output order[best[i]].
        order, names = self.order(task), [""] * classes
        for i, column in enumerate(best):
            names[order[column]] = task.labels[i]
        return f"; teacher.outputs.labels={names} would give dev accuracy {accuracy(best):.3f}"


class OneLogit(OutputMap):
    """A binary model's one output z, the logit of `positive` (None: the task's second label). It becomes
    the task's two logits [0, z]: z1 - z0 = z, and softmax gives P(positive) = sigmoid(z). With the first
    label positive, [0, -z]."""

    name = "one_logit"

    def __init__(self, positive: str | None = None) -> None:
        self.positive = None if positive is None else str(positive)

    def refusal(self, task: TaskSpec) -> str | None:
        if not task.kind.class_logits or len(task.labels) != 2:
            return f"one logit reads a task of two labels; {task.name} has {task.labels or 'a score'}"
        if self.positive is not None and self.positive not in task.labels:
            return f"teacher.outputs.positive={self.positive} is not a label of {task.name} ({task.labels})"
        return None

    def model_outputs(self, task: TaskSpec) -> int:
        return 1

    def __call__(self, outputs: Tensor, task: TaskSpec) -> Tensor:
        sign = -1.0 if self.positive == task.labels[0] else 1.0
        z = sign * outputs[:, :1]  # (B, 1)
        return torch.cat([torch.zeros_like(z), z], dim=-1)  # (B, 2)

    def hint(self, task: TaskSpec, logits: Tensor, labels: Tensor) -> str:
        other = task.labels[0] if self.positive in (None, task.labels[1]) else task.labels[1]
        return f"; is the logit that of the other label (teacher.outputs.positive={other})?"


class Score(OutputMap):
    """A regression model's one output: through a sigmoid first if `sigmoid`, then mapped linearly from
    `score_range` (the model's scale) onto the task's `score_range`; None: already in the task's units."""

    name = "score"

    def __init__(self, score_range: list[float] | None = None, sigmoid: bool = False) -> None:
        self.score_range = None if score_range is None else [float(x) for x in score_range]
        self.sigmoid = sigmoid

    def refusal(self, task: TaskSpec) -> str | None:
        if task.kind.class_logits:
            return f"task {task.name} has labels {task.labels}: read the model with teacher/outputs=classes"
        if self.score_range is None:
            return None
        if task.score_range is None:
            return f"task {task.name} has no score_range to map onto: set teacher.outputs.score_range=null"
        low, high = self.score_range
        return None if low < high else f"teacher.outputs.score_range={self.score_range}: need low < high"

    def model_outputs(self, task: TaskSpec) -> int:
        return 1

    def __call__(self, outputs: Tensor, task: TaskSpec) -> Tensor:
        score = outputs.sigmoid() if self.sigmoid else outputs  # (B, 1)
        if self.score_range is None:
            return score
        (low, high), (task_low, task_high) = self.score_range, task.score_range
        return task_low + (score - low) * (task_high - task_low) / (high - low)

    def hint(self, task: TaskSpec, logits: Tensor, labels: Tensor) -> str:
        return f"; is teacher.model a regression model of {task.name}'s scores?"
