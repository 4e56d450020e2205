"""Which rows each DDP process sees, chosen so that N processes reproduce one process.

Lightning's own distributed sampler pads the evaluation set with repeated rows (so every rank has the
same number of batches), which biases dev metrics, and it changes the training order with the world size.
Here (the Trainer runs with `use_distributed_sampler=False`):
- train: `EpochSampler` (resumable.py) for every world size, including 1: a permutation seeded by seed +
  epoch, of which process `rank` takes every world-th position (padded like DistributedSampler). One
  process then sees the permutation that N processes split between them, so with a per-process batch of
  `batch_size / N` the union of the N local batches at step k is exactly the single process's batch k.
- eval / predict: whole batches of the sequential order, dealt round-robin. No row is repeated or dropped,
  and each batch has the same rows (and padding) as in one process, so the logits are bitwise the same
  (for splits of at least `world` batches; see ShardedBatchSampler).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch.utils.data import Sampler


def rank_and_world(trainer) -> tuple[int, int]:
    """(global rank, world size); (0, 1) outside a Trainer."""
    if trainer is None:
        return 0, 1
    return trainer.global_rank, trainer.world_size


def local_batch_size(batch_size: int, world: int) -> int:
    """The per-process share of the global `batch_size`."""
    if batch_size % world:
        raise ValueError(
            f"batch_size={batch_size} is the global batch and must divide evenly over {world} processes "
            f"(trainer.devices x trainer.num_nodes); choose a multiple of {world}"
        )
    return batch_size // world


class ShardedBatchSampler(Sampler[list[int]]):
    """Sequential batches of `batch_size` rows; process `rank` of `world` takes batches rank, rank+world..."""

    def __init__(self, num_rows: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        # Lightning refuses a process with no batch: a split too small to deal whole batches to every
        # process gets smaller ones (its logits then match one process to float tolerance, not bitwise).
        batch_size = min(batch_size, max(1, math.ceil(num_rows / world)))
        self.num_rows, self.batch_size, self.rank, self.world = num_rows, batch_size, rank, world

    def _starts(self) -> range:
        return range(self.rank * self.batch_size, self.num_rows, self.world * self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for start in self._starts():
            yield list(range(start, min(start + self.batch_size, self.num_rows)))

    def __len__(self) -> int:
        return len(self._starts())
