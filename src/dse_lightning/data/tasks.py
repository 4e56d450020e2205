"""The GLUE pair-task table, read from `conf/task/*.yaml`.

A task is data, not code: a new GLUE-format task is a new YAML file validated against `TaskSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchmetrics import MetricCollection

from .task_kinds import TASK_KINDS, TaskKind

TEST = "test"  # the split evaluated once at the end, apart from dev (a task's own files may have one)


@dataclass
class TsvFormat:
    """Columns of the GLUE `.tsv` files, by header name."""

    sentence1: str = "sentence1"
    sentence2: str = "sentence2"
    label: str = "label"
    id: list[str] = field(default_factory=lambda: ["index"])  # joined with "_" to a stable example id


@dataclass
class HubFormat:
    """Where the task lives on the Hugging Face hub (`datasets.load_dataset(path, name)`)."""

    path: str = "nyu-mll/glue"
    name: str = ""
    sentence1: str = "sentence1"
    sentence2: str = "sentence2"
    label: str = "label"
    id: str | None = "idx"  # null: a dataset without ids; they are `<split>-<row>`


@dataclass
class FilesFormat:
    """A task read from a user's own files (data/file_source.py): the columns of each split's file and
    its format (csv, tsv, jsonl, parquet; null: from the file's suffix)."""

    sentence1: str = "sentence1"
    sentence2: str = "sentence2"
    label: str = "label"
    id: str | None = None  # null: ids are `<split>-<row>`
    format: str | None = None


@dataclass
class Split:
    file: str = ""  # stem of `<glue_dir>/<file>.tsv[.gz]`; with `files:`, the split's file (a path)
    hub: str = ""  # split name on the hub
    metric_suffix: str = ""  # e.g. "_mm" for MNLI mismatched: `val/acc_mm`


@dataclass
class TaskSpec:
    name: str
    type: str  # binary | multiclass | regression
    splits: dict[str, Split]  # "train" plus one or more evaluation sets, the first being "dev"
    metrics: dict[str, Any]  # metric name -> torchmetrics `_target_` config
    monitor: str  # metric name (without stage prefix) that selects the best checkpoint
    glue_dir: str = ""  # a GLUE task's folder in glue_data (none: the task's `files`, else the hub)
    labels: list[str] = field(default_factory=list)  # label strings in class-index order
    score_range: list[float] | None = None  # regression targets must lie in it
    tsv: TsvFormat = field(default_factory=TsvFormat)
    hub: HubFormat = field(default_factory=HubFormat)
    files: FilesFormat | None = None  # set: the splits are the user's own files, read with this mapping
    monitor_mode: str = "max"
    symmetric: bool = False  # the label does not depend on the sentences' order (a teacher may read both)

    def __post_init__(self) -> None:
        if self.type not in TASK_KINDS:
            raise ValueError(f"task '{self.name}': type must be one of {list(TASK_KINDS)}, got '{self.type}'")
        if self.kind.class_logits and len(self.labels) < 2:
            raise ValueError(f"task '{self.name}': a {self.type} task needs at least two labels")
        if "train" not in self.splits or len(self.eval_splits) == 0:
            raise ValueError(f"task '{self.name}': splits need 'train' and at least one evaluation set")
        if self.monitor not in self.metrics:
            raise ValueError(
                f"task '{self.name}': monitor '{self.monitor}' is not one of {list(self.metrics)}"
            )

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> TaskSpec:
        """Validate a task config against the schema; unknown or mistyped keys raise naming the key."""
        cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
        merged = OmegaConf.merge(OmegaConf.structured(cls), cfg)
        return OmegaConf.to_object(merged)

    @property
    def eval_splits(self) -> list[str]:
        """The splits validated every epoch, the first (dev) selecting the model; never the test split."""
        return [s for s in self.splits if s not in ("train", TEST)]

    @property
    def test_splits(self) -> list[str]:
        """["test"] when the task has a test split (evaluated once, after model selection), else []."""
        return [TEST] if TEST in self.splits else []

    @property
    def kind(self) -> TaskKind:
        """Everything that depends on the task type (outputs, targets, losses, scores)."""
        return TASK_KINDS[self.type]

    @property
    def num_labels(self) -> int:
        """Outputs of a cross-encoder: one per class, or one score for regression."""
        return self.kind.teacher_outputs(self.labels)

    @property
    def num_student_outputs(self) -> int:
        """Outputs of a student head: binary tasks distil one logit (z1 - z0), multiclass all C."""
        return self.kind.student_outputs(self.labels)

    def build_metrics(self, prefix: str, split: str) -> MetricCollection:
        """One fresh torchmetrics collection, e.g. prefix 'val/' + 'acc' + '_mm'."""
        metrics = {name: instantiate(conf) for name, conf in self.metrics.items()}
        return MetricCollection(metrics, prefix=prefix, postfix=self.splits[split].metric_suffix or None)

    def evaluate(self, split: str, logits: Tensor, labels: list) -> dict[str, float]:
        """The split's metrics of logits (N, C) against its gold labels, by the names results.json uses
        (`acc`, `acc_mm`), for logits not scored in a validation loop (ensembles, score files)."""
        collection = self.build_metrics("", split)
        collection.update(self.kind.metric_input(logits), torch.tensor(labels, dtype=self.kind.label_dtype))
        return {k: float(v) for k, v in collection.compute().items()}
