"""Several tasks' sentence-view DataModules as one: every train batch from one task, by a sampling rule.

A multi-task student (`tasks=glue_pairs`) shares one encoder across tasks and keeps a head per task, so a
batch must hold one task's pairs (its collator, label type and loss). Which task comes next is the rule
(`tasks.sampling`):
- `proportional` (MT-DNN): each task's batches once per epoch, the tasks shuffled together; a task
  appears in proportion to its size.
- `temperature`: as many steps as `proportional`, each task drawn with probability ∝ n_t ** (1 / T)
  (T = `tasks.temperature`; T = 1 is proportional in expectation, larger T flattens toward uniform); a task
  drawn past its last batch starts its order again.
- `round_robin`: the tasks in turn, as many steps as `proportional`.
The schedule of epoch e is drawn from (seed + e), as the tasks' own orders are, so every DDP process takes
the same task at each step and a resumed run rebuilds it; the position is checkpointed (resumable.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch

from .datamodule import GluePairDataModule
from .tasks import TaskSpec

RULES = ("proportional", "temperature", "round_robin")
SPLITS = {"val": "eval_splits", "test": "test_splits"}  # a stage's evaluation splits (TaskSpec fields)


def split_index(tasks: dict[str, TaskSpec], splits: str) -> list[tuple[str, int]]:
    """(task, split position) of each evaluation loader, tasks in order, then their `splits`
    ("eval_splits" or "test_splits"): the order of the multi-task DataModule's loaders."""
    return [(n, i) for n, t in tasks.items() for i in range(len(getattr(t, splits)))]


def schedule(sizes: dict[str, int], rule: str, seed: int, temperature: float = 2.0) -> list[str]:
    """The task of each step of one epoch; `sizes`: batches per task in that epoch."""
    if rule not in RULES:
        raise ValueError(f"tasks.sampling={rule}: not one of {list(RULES)}")
    names, steps = list(sizes), sum(sizes.values())
    generator = torch.Generator().manual_seed(seed)
    if rule == "round_robin":
        return [names[i % len(names)] for i in range(steps)]
    if rule == "proportional":
        flat = [name for name in names for _ in range(sizes[name])]
        return [flat[i] for i in torch.randperm(steps, generator=generator).tolist()]
    if temperature <= 0:
        raise ValueError(f"tasks.temperature={temperature}: must be above 0")
    weights = torch.tensor([sizes[n] ** (1.0 / temperature) for n in names], dtype=torch.float64)
    draws = torch.multinomial(weights, steps, replacement=True, generator=generator)
    return [names[i] for i in draws.tolist()]


class TaskBatches:
    """The train loader of a multi-task run: yields `(task, batch)` by the epoch's schedule; its position,
    (epoch, steps taken), goes into every checkpoint, and a resumed epoch skips the steps already taken."""

    def __init__(self, loaders: dict[str, Any], rule: str, seed: int, temperature: float, trainer) -> None:
        self.loaders, self.rule, self.seed, self.temperature = loaders, rule, seed, temperature
        self.trainer = trainer
        self.epoch, self._done = 0, 0
        self._resume: dict[str, int] | None = None

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "steps": self._done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        self.epoch = self.trainer.current_epoch if self.trainer is not None else self.epoch
        sizes = {name: len(loader) for name, loader in self.loaders.items()}
        order = schedule(sizes, self.rule, self.seed + self.epoch, self.temperature)
        resume, self._resume = self._resume, None
        self._done = resume["steps"] if resume and resume["epoch"] == self.epoch else 0
        iters = {name: self._start(name, order[: self._done].count(name)) for name in self.loaders}
        for name in order[self._done :]:
            batch = next(iters[name], None)
            if batch is None:  # a task drawn past its last batch (temperature, round_robin) starts again
                iters[name] = self._start(name, 0)
                batch = next(iters[name])
            self._done += 1
            yield name, batch

    def _start(self, name: str, taken: int) -> Iterator[dict]:
        """The task's loader at this epoch's order, past the `taken` batches an earlier run handed out."""
        loader = self.loaders[name]
        loader.sampler.set_epoch(self.epoch)
        loader.load_state_dict({"epoch": self.epoch, "batches": taken % max(len(loader), 1)})
        return iter(loader)


class MultiTaskDataModule(pl.LightningDataModule):
    """The tasks' DataModules (sentence view, each with its teacher's targets) under one trainer.

    Validation and test loaders are the tasks' in task order, then split order: `eval_index[i]` names the
    (task, split position) of loader i."""

    def __init__(
        self, tasks: dict[str, GluePairDataModule], sampling: str, seed: int, temperature: float = 2.0
    ) -> None:
        super().__init__()
        if sampling not in RULES:
            raise ValueError(f"tasks.sampling={sampling}: not one of {list(RULES)}")
        self.tasks, self.sampling, self.seed, self.temperature = tasks, sampling, seed, temperature
        specs = {name: dm.task for name, dm in tasks.items()}
        self.eval_index, self.test_index = (split_index(specs, s) for s in SPLITS.values())
        self._train: TaskBatches | None = None
        self._resume: dict | None = None

    def _each(self, fn: str, *args) -> None:
        for dm in self.tasks.values():
            dm.trainer = self.trainer
            getattr(dm, fn)(*args)

    def prepare_data(self) -> None:
        self._each("prepare_data")

    def setup(self, stage: str | None = None) -> None:
        self._each("setup", stage)

    def state_dict(self) -> dict:
        return {"train": self._train.state_dict()} if self._train else {}

    def load_state_dict(self, state: dict) -> None:
        self._resume = state.get("train")

    def train_dataloader(self) -> TaskBatches:
        for dm in self.tasks.values():
            dm.trainer = self.trainer
        loaders = {name: dm.train_dataloader() for name, dm in self.tasks.items()}
        self._train = TaskBatches(loaders, self.sampling, self.seed, self.temperature, self.trainer)
        if self._resume is not None:
            self._train.load_state_dict(self._resume)
            self._resume = None
        return self._train

    def val_dataloader(self) -> list:
        return [self.tasks[n].eval_loader(self.tasks[n].task.eval_splits[i]) for n, i in self.eval_index]

    def test_dataloader(self) -> list:
        return [self.tasks[n].eval_loader(self.tasks[n].task.test_splits[i]) for n, i in self.test_index]
