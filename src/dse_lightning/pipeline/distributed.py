"""The few places where the pipeline's processes must agree under DDP.

Every process runs the whole pipeline (Lightning's script launcher re-runs the command per rank), and
they all take part in fit / validate / predict. Only rank 0 writes artifacts; the others wait for it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def gather_rows(
    trainer, ids: list[str], rows: torch.Tensor, order: list[str], digest: str = ""
) -> tuple[list[str], torch.Tensor]:
    """Every process's predicted (ids, rows), merged and put in `order` (e.g. the split's ids, file order).

    The result is the same whatever the world size: no id may be missing or predicted twice, and every
    process must have predicted the same inputs (`digest`: what identifies them).
    """
    if trainer.world_size > 1:
        parts: list = [None] * trainer.world_size
        dist.all_gather_object(parts, (ids, rows, digest))
        if len({part_digest for _, _, part_digest in parts}) > 1:
            raise RuntimeError(f"the {len(parts)} processes were given different rows to predict")
        ids = [i for part_ids, _, _ in parts for i in part_ids]
        rows = torch.cat([part_rows for _, part_rows, _ in parts])  # a share may be empty: torch.empty(0)
    index = {i: n for n, i in enumerate(ids)}
    if len(index) != len(ids) or index.keys() != set(order):
        extra, missing = len(ids) - len(index), len(set(order) - index.keys())
        raise RuntimeError(f"prediction ids do not cover the split once: {extra} repeated, {missing} missing")
    return list(order), rows[[index[i] for i in order]]


def wait_for_rank_zero(trainer, what: str) -> None:
    """Barrier after rank 0 wrote `what` (a no-op in one process)."""
    trainer.strategy.barrier(what)
