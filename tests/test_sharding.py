"""The row sharding that lets N DDP processes reproduce one: every row once, batches as in one process."""

from __future__ import annotations

import pytest

from dse_lightning.data.resumable import EpochSampler
from dse_lightning.data.sharding import ShardedBatchSampler, local_batch_size


@pytest.mark.parametrize(("rows", "batch", "world"), [(10, 3, 2), (9, 4, 3), (64, 64, 2), (1, 8, 2)])
def test_sharded_batches_are_one_process_batches_dealt_round_robin(rows: int, batch: int, world: int) -> None:
    shards = [list(ShardedBatchSampler(rows, batch, r, world)) for r in range(world)]
    size = ShardedBatchSampler(rows, batch, 0, world).batch_size
    single = list(ShardedBatchSampler(rows, size, 0, 1))
    dealt = [shards[i % world][i // world] for i in range(len(single))]
    assert dealt == single and sum(map(len, shards)) == len(single)
    assert sorted(i for b in single for i in b) == list(range(rows))
    assert all(len(s) >= 1 for s in shards if rows >= world)  # Lightning refuses an empty loader
    assert [len(s) for s in shards] == [len(ShardedBatchSampler(rows, batch, r, world)) for r in range(world)]


@pytest.mark.parametrize(("rows", "batch", "world"), [(16, 8, 2), (15, 4, 2), (12, 6, 3)])
def test_train_shards_of_a_step_form_the_single_process_batch(rows: int, batch: int, world: int) -> None:
    one = list(EpochSampler(rows, seed=3))
    ranks = [list(EpochSampler(rows, seed=3, rank=r, world=world)) for r in range(world)]
    local = local_batch_size(batch, world)
    assert sorted(one) == list(range(rows)) and {len(r) for r in ranks} == {-(-rows // world)}
    for step in range(rows // batch):  # the full steps: the padded tail repeats rows, like DistributedSampler
        union = {i for r in ranks for i in r[step * local : (step + 1) * local]}
        assert union == set(one[step * batch : (step + 1) * batch])


def test_global_batch_must_divide_over_processes() -> None:
    with pytest.raises(ValueError, match=r"batch_size=9 .* 2 processes"):
        local_batch_size(9, 2)
