"""GluePairDataModule: one GLUE pair task, as pair-encoded or sentence-encoded batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import datasets
import pytorch_lightning as pl
from torch.utils.data import DataLoader
from transformers import AutoTokenizer
from transformers.trainer_pt_utils import get_length_grouped_indices

from ..logits import Provenance
from .collate import PairCollator, SentencePairCollator
from .encode import build_or_load, tokenizer_fingerprint
from .holdout import HoldoutSource
from .resumable import EpochSampler, ResumableLoader
from .sharding import ShardedBatchSampler, local_batch_size, rank_and_world
from .sources import resolve_source
from .student_targets import StudentTargets
from .tasks import TaskSpec

log = logging.getLogger(__name__)
View = Literal["pair", "sentence"]


class GluePairDataModule(pl.LightningDataModule):
    """`prepare_data` reads and tokenises each split into an on-disk cache (no state); `setup` loads it.

    Batches are padded per batch. `limit_train` / `limit_eval` take a fixed random subset (for smoke
    runs); the subset is part of the data checksum, so its cache and teacher logits are its own.
    `batch_size` is the global batch: under DDP each process takes its share (see `sharding.py`).
    The train order is a permutation seeded by `seed` + epoch, and the train loader's position is saved
    in checkpoints (see resumable.py). `truncated[split]` counts inputs cut to `max_length`.

    `targets` (targets/): the teacher's logits, joined to the train rows by id (batches then carry
    `teacher_logits`), or an online teacher (sentence-view train batches then also carry their pair
    encoding). `train_rows`: only these train rows (by position), e.g. a fold teacher's share.
    `holdout`: a share of the train rows stands in for dev (data/holdout.py). `both_orders`: pair rows also
    carry the `s2, s1` encoding (a symmetric task's teacher reads both, models/teacher_module.py).
    """

    def __init__(
        self,
        task: TaskSpec,
        tokenizer: str,
        view: View = "pair",
        dir: str | None = None,  # noqa: A002 (the documented `data.dir` option)
        hub_dir: str | None = None,
        cache_dir: str = ".cache",
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        group_by_length: bool = False,
        pad_to_max_length: bool = False,
        limit_train: int | None = None,
        limit_eval: int | None = None,
        max_bad_rows: int = 10,
        max_bad_fraction: float = 0.001,
        max_truncated_fraction: float = 1.0,
        seed: int = 0,  # the training order's shuffle seed (the run's seed)
        targets: StudentTargets | None = None,
        train_rows: list[int] | None = None,
        holdout: float | None = None,
        both_orders: bool = False,
    ) -> None:
        super().__init__()
        if view not in ("pair", "sentence"):
            raise ValueError(f"data.view must be 'pair' or 'sentence', got '{view}'")
        if both_orders and (view != "pair" or not task.symmetric):
            raise ValueError(
                f"teacher.both_orders: only a cross-encoder (pair view) of a symmetric task reads both "
                f"sentence orders; task '{task.name}' is {'symmetric' if task.symmetric else 'not symmetric'}"
            )
        self.save_hyperparameters(ignore=["task", "targets", "train_rows"])
        self.task, self.targets, self.train_rows = task, targets, train_rows
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.source = resolve_source(
            task, dir, hub_dir, max_bad_rows=max_bad_rows, max_bad_fraction=max_bad_fraction
        )
        if holdout:  # choose recipes on train rows held out, never on dev (data/holdout.py)
            self.source = HoldoutSource(self.source, holdout, task.eval_splits[0])
        self.data: dict[str, datasets.DatasetDict] = {}
        self.truncated: dict[str, int] = {}
        self._train_loader: ResumableLoader | None = None
        self._train_resume: dict | None = None  # a checkpoint's train position, for the next train loader
        self._fingerprints: dict[str, str] = {}

    # -- identity ------------------------------------------------------------------------------
    def _limit(self, split: str) -> int | None:
        return self.hparams.limit_train if split == "train" else self.hparams.limit_eval

    def fingerprint(self, split: str) -> str:
        """Checksum of the split's raw data (file sha256 or hub fingerprint) plus any subset."""
        if split not in self._fingerprints:
            limit = self._limit(split)
            suffix = f"+subset{limit}" if limit else ""
            self._fingerprints[split] = self.source.fingerprint(split) + suffix
        return self._fingerprints[split]

    def provenance(self, teacher_checkpoint: str, split: str = "train") -> Provenance:
        """What teacher logits of this split must carry: `teacher_checkpoint` names the teacher."""
        return Provenance(
            task=self.task.name,
            split=split,
            teacher_checkpoint=teacher_checkpoint,
            tokenizer=tokenizer_fingerprint(self.tokenizer),
            max_length=self.hparams.max_length,
            data_checksum=self.fingerprint(split),
        )

    def _extra(self, split: str) -> datasets.Dataset | None:
        """Train rows without a gold label (a teacher-labelled transfer set), from the targets."""
        return self.targets.extra_rows if split == "train" and self.targets is not None else None

    def _key_fields(self, split: str, view: View) -> dict:
        fields = {
            "task": self.task.name,
            "split": split,
            "view": view,
            "tokenizer": tokenizer_fingerprint(self.tokenizer),
            "max_length": self.hparams.max_length,
            "data": self.fingerprint(split),
        }
        if self.hparams.both_orders:  # only when set: the one-order caches keep their keys
            fields["both_orders"] = True
        return fields if self._extra(split) is None else {**fields, "extra": self.targets.extra_key}

    def raw(self, split: str) -> datasets.Dataset:
        """The split's gold rows (id, sentence1, sentence2, label), subset if `limit_*` is set."""
        raw = self.source.load(split)
        limit = self._limit(split)
        if limit and limit < len(raw):
            raw = raw.shuffle(seed=0).select(range(limit))  # fixed seed: the subset is part of the data
        return raw

    def _rows(self, split: str) -> datasets.Dataset:
        """What is tokenised: the gold rows, and on train the rows without a gold label (`has_label` False,
        a placeholder label that no loss reads)."""
        gold, extra = self.raw(split), self._extra(split)
        if extra is None:
            return gold
        gold = gold.add_column("has_label", [True] * len(gold))
        extra = extra.add_column("label", [gold[0]["label"] * 0] * len(extra))
        extra = extra.add_column("has_label", [False] * len(extra)).select_columns(gold.column_names)
        return datasets.concatenate_datasets([gold, extra.cast(gold.features)])

    # -- Lightning hooks -------------------------------------------------------------------------
    def _encoded(self, split: str, view: View | None = None) -> tuple[datasets.DatasetDict, dict]:
        view = view or self.hparams.view
        cache = Path(self.hparams.cache_dir)
        return build_or_load(
            lambda: self._rows(split),
            self._key_fields(split, view),
            cache,
            self.tokenizer,
            self.hparams.max_length,
        )

    def prepare_data(self) -> None:
        for split in self.task.splits:
            self._encoded(split)

    def _train_split(self, data: datasets.DatasetDict) -> datasets.DatasetDict:
        pairs = data["pairs"]
        if self.train_rows is not None:
            pairs = pairs.select(self.train_rows)
        if self.targets is not None and self.targets.logits is not None:
            teacher = self.targets.logits.for_ids(list(pairs["id"]))  # (N, K), joined by id
            pairs = pairs.add_column("teacher", teacher.float().tolist())
        return datasets.DatasetDict({**data, "pairs": pairs})

    def setup(self, stage: str | None = None) -> None:
        for split in self.task.splits:
            if split not in self.data:
                data, meta = self._encoded(split)
                self.data[split] = self._train_split(data) if split == "train" else data
                self.truncated[split] = meta["truncated"]
                self._check_truncation(split, meta["truncated"], len(data.get("sentences", data["pairs"])))
                log.info(
                    "%s/%s: %d examples from %s (%d input(s) truncated to max_length=%d)",
                    self.task.name,
                    split,
                    len(self.data[split]["pairs"]),
                    self.source.describe(split),
                    meta["truncated"],
                    self.hparams.max_length,
                )

    def _check_truncation(self, split: str, truncated: int, inputs: int) -> None:
        share, limit = truncated / max(inputs, 1), self.hparams.max_truncated_fraction
        if share > limit:
            raise ValueError(
                f"{self.source.describe(split)}: {truncated} of {inputs} inputs ({share:.0%}) are longer "
                f"than data.max_length={self.hparams.max_length} tokens (limit data.max_truncated_fraction="
                f"{limit}); raise data.max_length, or the limit if cutting them is meant"
            )

    def num_examples(self, split: str) -> int:
        return len(self.data[split]["pairs"])

    def ids(self, split: str) -> list[str]:
        return list(self.data[split]["pairs"]["id"])

    # -- loaders ------------------------------------------------------------------------------------
    def _collator(self, split: str):
        dtype = self.task.kind.label_dtype
        pad_to = self.hparams.max_length if self.hparams.pad_to_max_length else None
        if self.hparams.view == "pair":
            return PairCollator(self.tokenizer, dtype, pad_to)
        online = self.targets is not None and self.targets.online is not None and split == "train"
        pair_len = self.hparams.max_length if online else None
        return SentencePairCollator(self.tokenizer, self.data[split]["sentences"], dtype, pair_len, pad_to)

    def _loader(self, split: str, **sampling) -> DataLoader:
        return DataLoader(
            self.data[split]["pairs"],
            collate_fn=self._collator(split),
            num_workers=self.hparams.num_workers,
            **sampling,
        )

    def eval_loader(self, split: str) -> DataLoader:
        """The split's rows in file order, whole batches dealt to the DDP processes (sharding.py)."""
        rank, world = rank_and_world(self.trainer)
        rows = self.num_examples(split)
        return self._loader(
            split, batch_sampler=ShardedBatchSampler(rows, self.hparams.eval_batch_size, rank, world)
        )

    def _lengths(self, split: str) -> list[int]:
        pairs = self.data[split]["pairs"]
        if self.hparams.view == "pair":
            return [len(x) for x in pairs["input_ids"]]
        sent_len = [len(x) for x in self.data[split]["sentences"]["input_ids"]]
        return [sent_len[a] + sent_len[b] for a, b in zip(pairs["a"], pairs["b"], strict=True)]

    def state_dict(self) -> dict:
        """What Lightning stores in each checkpoint for this DataModule: the train loader's position."""
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader else {}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restores the DataModule before it builds the train loader (the loader's own state
        # is applied too late: configure_optimizers builds it early, to count the steps).
        self._train_resume = state.get("train_loader")

    def train_dataloader(self) -> DataLoader:
        rank, world = rank_and_world(self.trainer)
        bs, pairs = local_batch_size(self.hparams.batch_size, world), self.data["train"]["pairs"]
        order = None
        if self.hparams.group_by_length:
            # Batches of similar length pad less; the order still shuffles across mega-batches.
            lengths = self._lengths("train")
            global_bs = self.hparams.batch_size
            order = lambda gen: get_length_grouped_indices(lengths, global_bs, generator=gen)  # noqa: E731
        loader = ResumableLoader(
            pairs,
            EpochSampler(len(pairs), self.hparams.seed, order, rank=rank, world=world),
            batch_size=bs,
            collate_fn=self._collator("train"),
            num_workers=self.hparams.num_workers,
        )
        if self._train_resume is not None:
            loader.load_state_dict(self._train_resume)
            self._train_resume = None
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> list[DataLoader]:
        return [self.eval_loader(s) for s in self.task.eval_splits]

    def test_dataloader(self) -> list[DataLoader]:
        """The task's test split (evaluated once, after model selection on dev)."""
        return [self.eval_loader(s) for s in self.task.test_splits]

    def predict_dataloader(self) -> DataLoader:
        """The train split in file order, for exporting teacher logits."""
        return self.eval_loader("train")
