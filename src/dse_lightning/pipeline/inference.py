"""Teacher inference: a TeacherModule's logits for some rows, keyed by id, whatever the number of processes.

One path for every prediction a teacher makes: its train and dev logits (teacher.py; an ensemble's members
are such teachers), a fold teacher's held-out rows (targets/folds.py) and a transfer set's labels
(augment/transfer.py). The trainer comes from the run's `trainer=` (`build_trainer`, or `build_predictor`
where nothing is fitted): under DDP each process predicts its share of whole batches (data/sharding.py)
and `predict_logits` gathers the shares, so the result is one process's, in the order the rows give.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import datasets
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from ..data.collate import PairCollator
from ..data.datamodule import GluePairDataModule
from ..data.encode import encode_pairs
from ..data.sharding import ShardedBatchSampler, rank_and_world
from ..logits import KeyedLogits
from ..utils.io import sha256_json
from .distributed import gather_rows


class Rows(Protocol):
    """What a teacher predicts. `predict` runs the trainer on this process's share of the batches;
    `ids` (read after it) is the order of the result; `name` says which rows, in errors; `digest`
    identifies the rows, so processes that were given different ones are refused."""

    @property
    def ids(self) -> list[str]: ...

    @property
    def name(self) -> str: ...

    @property
    def digest(self) -> str: ...

    def predict(self, trainer: pl.Trainer, module: pl.LightningModule) -> list[dict] | None: ...


@dataclass
class SplitRows:
    """A split of a pair-view DataModule, in file order, batched by its eval loader. Train: Lightning sets
    the data up first; another split must have been set up by this trainer (after fit or validate)."""

    dm: GluePairDataModule
    split: str = "train"

    @property
    def ids(self) -> list[str]:
        return self.dm.ids(self.split)

    @property
    def name(self) -> str:
        return f"{self.dm.task.name}/{self.split}"

    @property
    def digest(self) -> str:
        return self.dm.fingerprint(self.split)

    def predict(self, trainer: pl.Trainer, module: pl.LightningModule) -> list[dict] | None:
        if self.split == "train":
            return trainer.predict(module, datamodule=self.dm)
        return trainer.predict(module, self.dm.eval_loader(self.split))


@dataclass
class PairRows:
    """(sentence1, sentence2) pairs and their ids, tokenised as the teacher's pair view and predicted in
    batches of similar length (little padding); the ids put the logits back in the pairs' order."""

    pairs: list[tuple[str, str]]
    ids: list[str]
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    batch_size: int
    name: str = "pairs"
    both_orders: bool = False  # also encode `s2, s1`: a teacher that reads both averages them

    @cached_property
    def digest(self) -> str:
        return sha256_json([self.ids, self.pairs])

    @cached_property
    def encoded(self) -> datasets.Dataset:
        """The tokenised pairs (id, input_ids, ...), shortest first (a stable sort: ties keep their order)."""
        first, second = zip(*self.pairs, strict=True) if self.pairs else ((), ())
        n = len(self.pairs)
        raw = {"id": self.ids, "sentence1": list(first), "sentence2": list(second), "label": [0] * n}
        raw = datasets.Dataset.from_dict(raw)
        encoded, _ = encode_pairs(raw, self.tokenizer, self.max_length, both_orders=self.both_orders)
        lengths = [len(x) for x in encoded["pairs"]["input_ids"]]
        return encoded["pairs"].select(sorted(range(n), key=lengths.__getitem__))

    def predict(self, trainer: pl.Trainer, module: pl.LightningModule) -> list[dict] | None:
        rank, world = rank_and_world(trainer)
        sampler = ShardedBatchSampler(len(self.encoded), self.batch_size, rank, world)
        loader = DataLoader(self.encoded, batch_sampler=sampler, collate_fn=PairCollator(self.tokenizer))
        return trainer.predict(module, loader)


def predict_logits(trainer: pl.Trainer, module: pl.LightningModule, rows: Rows) -> KeyedLogits:
    """The module's logits (N, C) for `rows`, in `rows.ids` order, gathered from every process."""
    # A chunk with fewer rows than processes leaves some without a batch: their share is empty.
    module.allow_zero_length_dataloader_with_multiple_devices = True
    batches = rows.predict(trainer, module) or []
    ids = [i for b in batches for i in b["ids"]]
    logits = torch.cat([b["logits"] for b in batches]) if batches else torch.empty(0)
    order, values = gather_rows(trainer, ids, logits, rows.ids, rows.digest)
    return KeyedLogits(order, values, f"predicted for {rows.name}")
