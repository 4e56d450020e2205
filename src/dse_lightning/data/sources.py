"""Where a task's rows come from: a local `glue_data` folder, else the Hugging Face hub.

Both give a `datasets.Dataset` with columns id, sentence1, sentence2, label, and a fingerprint of the
raw data that keys the tokenisation cache.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..utils.io import sha256_file
from .glue_reader import find_split_file, read_glue_tsv
from .tasks import TaskSpec

log = logging.getLogger(__name__)


def candidate_dirs(data_dir: str | None) -> list[Path]:
    """`data.dir` when set; otherwise $DSE_GLUE_DIR, ./data/glue, ../shared/data/glue (in that order)."""
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data.dir={data_dir}: no such directory")
        return [path]
    found = [os.environ.get("DSE_GLUE_DIR"), "data/glue", "../shared/data/glue"]
    return [Path(p).expanduser() for p in found if p and Path(p).expanduser().is_dir()]


@dataclass
class LocalSource:
    glue_dir: Path
    task: TaskSpec
    max_bad_rows: int = 10
    max_bad_fraction: float = 0.001

    def _path(self, split: str) -> Path:
        path = find_split_file(self.glue_dir, self.task, split)
        if path is None:
            stem = self.task.splits[split].file
            raise FileNotFoundError(
                f"{self.glue_dir / self.task.glue_dir}: no {stem}.tsv or {stem}.tsv.gz for split '{split}'"
            )
        return path

    def describe(self, split: str) -> str:
        return str(self._path(split))

    def fingerprint(self, split: str) -> str:
        return sha256_file(self._path(split))

    def load(self, split: str) -> datasets.Dataset:
        path = self._path(split)
        cols = read_glue_tsv(path, self.task, self.max_bad_rows, self.max_bad_fraction)
        if not cols["id"]:
            raise ValueError(f"{path}: no data rows")
        return datasets.Dataset.from_dict(cols)


@dataclass
class HubSource:
    task: TaskSpec

    def describe(self, split: str) -> str:
        return f"hub:{self.task.hub.path}/{self.task.hub.name}[{self.task.splits[split].hub}]"

    def _raw(self, split: str) -> datasets.Dataset:
        hub, name = self.task.hub, self.task.splits[split].hub
        try:
            return datasets.load_dataset(hub.path, hub.name, split=name)
        except Exception as err:  # network, auth and missing-split errors all end here
            raise FileNotFoundError(
                f"task '{self.task.name}': no local folder has {self.task.glue_dir}/ and the Hugging Face "
                f"hub could not give {hub.path}/{hub.name} split '{name}' ({type(err).__name__}: {err}). "
                "Set data.dir (or $DSE_GLUE_DIR) to a glue_data folder, or run with a network."
            ) from err

    def fingerprint(self, split: str) -> str:
        return self._raw(split)._fingerprint

    def load(self, split: str) -> datasets.Dataset:
        hub = self.task.hub
        raw = self._raw(split)
        ds = raw.map(
            lambda row: {
                "id": str(row[hub.id]),
                "sentence1": row[hub.sentence1],
                "sentence2": row[hub.sentence2],
            },
            remove_columns=[c for c in raw.column_names if c != hub.label],
        )
        return ds.rename_column(hub.label, "label") if hub.label != "label" else ds


def resolve_source(task: TaskSpec, data_dir: str | None, **reader_kw) -> LocalSource | HubSource:
    """The first local folder holding the task's train file, else the hub."""
    dirs = candidate_dirs(data_dir)
    for glue_dir in dirs:
        if (glue_dir / task.glue_dir).is_dir():
            return LocalSource(glue_dir, task, **reader_kw)
    if data_dir:
        raise FileNotFoundError(f"data.dir={data_dir}: no {task.glue_dir}/ folder for task '{task.name}'")
    log.info("task %s: no local GLUE folder among %s; using the Hugging Face hub", task.name, dirs)
    return HubSource(task)
