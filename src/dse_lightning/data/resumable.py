"""A train loader whose position Lightning checkpoints, so a run killed mid-epoch resumes exactly.

The order of epoch e is a permutation seeded by (seed + e), not drawn from the global RNG, so the resumed
process can rebuild it. The loader counts the batches it has handed out; that count goes into every
checkpoint (through the DataModule's `state_dict`) and back into the next loader on resume, whose epoch
then starts at the next batch of the same order. (The loader's own `state_dict` / `load_state_dict` mark
it as resumable to Lightning.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

Order = Callable[[torch.Generator], list[int]]


class EpochSampler(Sampler[int]):
    """Indices 0..n-1 in a fixed order per epoch: `order(generator)` (default: a random permutation).

    Under DDP, process `rank` of `world` takes every world-th position of that order (padded, like
    DistributedSampler, to a multiple of `world`), so the union of the processes' local batch k is the
    single process's batch k (see sharding.py).
    """

    def __init__(self, n: int, seed: int, order: Order | None = None, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.order, self.rank, self.world = n, seed, order, rank, world
        self.epoch = 0  # Lightning calls set_epoch before each epoch
        self.start = 0  # positions to skip in this process's share of the order (set by ResumableLoader)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.order is not None:
            return self.order(generator)
        return torch.randperm(self.n, generator=generator).tolist()

    def _share(self) -> list[int]:
        order = self.permutation()
        order += order[: len(self) * self.world - self.n]  # every process gets as many rows
        return order[self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._share()[self.start :])

    def __len__(self) -> int:
        return math.ceil(self.n / self.world)


class ResumableLoader(DataLoader):
    """A DataLoader over an EpochSampler whose state is (epoch, batches handed out in it)."""

    def __init__(self, dataset, sampler: EpochSampler, **kwargs: Any) -> None:
        # Its own generator: worker seeds are then not drawn from the global RNG, which a resumed run
        # would otherwise draw from once more than an uninterrupted one.
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._done = 0
        self._resume: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __iter__(self) -> Iterator[Any]:
        # A generator: its body runs at the first next(), after Lightning's set_epoch for this epoch.
        resume, self._resume = self._resume, None
        same_epoch = resume is not None and resume["epoch"] == self.sampler.epoch
        self._done = resume["batches"] if same_epoch else 0
        self.sampler.start = self._done * self.batch_size
        for batch in super().__iter__():
            self._done += 1
            yield batch
