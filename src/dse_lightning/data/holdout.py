"""A validation split carved from train (`data.holdout=0.1`): recipes are chosen on it, never on dev.

The task's dev split is replaced by a fixed share of its train rows (datasets' own `train_test_split`,
seed 0: every run and recipe holds out the same rows), and train keeps the rest. Everything downstream
(teacher, student, metrics, checkpoint selection, results.json) then reads "dev" as the held-out rows;
the fingerprints say so, so caches and teacher logits of a holdout run are never mixed with a full run's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import datasets

SEED = 0


@dataclass
class HoldoutSource:
    """A task source whose train rows are split into train (the rest) and dev (`fraction` of them)."""

    inner: object  # a LocalSource or HubSource (data/sources.py)
    fraction: float
    eval_split: str = "dev"

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"data.holdout must be a share of the train rows in (0, 1), got {self.fraction}")
        others = [s for s in self.inner.task.eval_splits if s != self.eval_split]
        if others:
            raise ValueError(
                f"data.holdout: task '{self.inner.task.name}' has more evaluation sets than one ({others}); "
                "a held-out split stands in for one dev set only"
            )

    @property
    def task(self):
        return self.inner.task

    @cached_property
    def _parts(self) -> datasets.DatasetDict:
        return self.inner.load("train").train_test_split(test_size=self.fraction, seed=SEED, shuffle=True)

    def _tag(self, split: str) -> str:
        return f"holdout{self.fraction}:{'held' if split == self.eval_split else 'rest'}"

    def describe(self, split: str) -> str:
        return f"{self.inner.describe('train')} [{self._tag(split)}]"

    def fingerprint(self, split: str) -> str:
        return f"{self.inner.fingerprint('train')}+{self._tag(split)}"

    def load(self, split: str) -> datasets.Dataset:
        if split == self.eval_split:
            return self._parts["test"]
        if split == "train":
            return self._parts["train"]
        return self.inner.load(split)
