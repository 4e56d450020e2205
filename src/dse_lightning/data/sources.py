"""Where a task's rows come from: a local `glue_data` folder, a local hub-layout copy, else the hub.

Both give a `datasets.Dataset` with columns id, sentence1, sentence2, label, and a fingerprint of the
raw data that keys the tokenisation cache.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import datasets

from ..utils.io import sha256_file, sha256_json
from .file_source import FileSource
from .glue_reader import GlueFormatError, find_split_file, read_glue_tsv
from .tasks import HubFormat, TaskSpec

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
    """The task's dataset on the Hugging Face hub (`task.hub.path`), or a local copy of it in the hub's own
    layout (`data.hub_dir`: parquet files and the README's configs, as `git clone` or `snapshot_download`
    leave it). An HF cache filled elsewhere also works offline (`HF_DATASETS_OFFLINE=1`)."""

    task: TaskSpec
    path: str | None = None  # data.hub_dir: a local hub-layout copy instead of task.hub.path

    def describe(self, split: str) -> str:
        return f"hub:{self.path or self.task.hub.path}/{self.task.hub.name}[{self.task.splits[split].hub}]"

    def _raw(self, split: str) -> datasets.Dataset:
        hub, name = self.task.hub, self.task.splits[split].hub
        try:
            if self.path:  # a local copy: read afresh, into memory, through a cache of its own
                # (datasets' shared cache keys a folder by its name and file names: two copies named alike,
                # or one edited in place, would read each other's rows and split sizes)
                with tempfile.TemporaryDirectory(prefix="dse-hub-copy-") as cache:
                    return datasets.load_dataset(
                        self.path, hub.name, split=name, cache_dir=cache, keep_in_memory=True
                    )
            return datasets.load_dataset(hub.path, hub.name, split=name)
        except Exception as err:  # network, auth and missing-split errors all end here
            if self.path:
                raise FileNotFoundError(
                    f"data.hub_dir={self.path}: no hub-layout dataset with config '{hub.name}' and split "
                    f"'{name}' for task '{self.task.name}' ({type(err).__name__}: {err})"
                ) from err
            raise FileNotFoundError(
                f"task '{self.task.name}': no local folder has {self.task.glue_dir}/ and the Hugging Face "
                f"hub could not give {hub.path}/{hub.name} split '{name}' ({type(err).__name__}: {err}). "
                "Set data.dir (or $DSE_GLUE_DIR) to a glue_data folder, data.hub_dir to a local copy of the "
                "hub dataset, or run with a network."
            ) from err

    def fingerprint(self, split: str) -> str:
        """The hub's fingerprint of the split; for a local copy, the sha256 of its files (as a TSV's)."""
        if not self.path:
            return self._raw(split)._fingerprint
        folder, stem = Path(self.path) / self.task.hub.name, self.task.splits[split].hub
        files = sorted(folder.glob(f"{stem}-*")) or sorted(folder.rglob("*"))
        return sha256_json({f.name: sha256_file(f) for f in files if f.is_file()})

    def load(self, split: str) -> datasets.Dataset:
        hub = self.task.hub
        raw = self._raw(split)
        if hub.id is None:  # a dataset without ids: its row numbers, stable while the dataset is
            raw = raw.add_column("_row", [f"{self.task.splits[split].hub}-{i}" for i in range(len(raw))])
            hub = replace(hub, id="_row")
        missing = [c for c in (hub.sentence1, hub.sentence2, hub.label, hub.id) if c not in raw.column_names]
        if missing:
            raise GlueFormatError(
                f"{self.describe(split)}: no column(s) {missing} (task.hub names them); "
                f"found {raw.column_names}"
            )
        check_hub_rows(self.describe(split), raw, self.task, hub)
        ds = raw.map(
            lambda row: {
                "id": str(row[hub.id]),
                "sentence1": row[hub.sentence1],
                "sentence2": row[hub.sentence2],
            },
            remove_columns=[c for c in raw.column_names if c != hub.label],
        )
        return ds.rename_column(hub.label, "label") if hub.label != "label" else ds


def check_hub_rows(where: str, raw: datasets.Dataset, task: TaskSpec, hub: HubFormat) -> None:
    """The TSV reader's row checks for hub rows: labels of the task's set (the hub's test splits carry -1),
    scores in range, non-empty sentences; the error names the dataset, split and row."""
    columns = zip(raw[hub.sentence1], raw[hub.sentence2], raw[hub.label], raw[hub.id], strict=True)
    for row, (s1, s2, label, idx) in enumerate(columns):
        problem = _hub_row_problem(s1, s2, label, task)
        if problem:
            raise GlueFormatError(f"{where}: row {row} ({hub.id} {idx}): {problem}")


def _hub_row_problem(s1, s2, label, task: TaskSpec) -> str | None:
    if not (isinstance(s1, str) and s1.strip() and isinstance(s2, str) and s2.strip()):
        return "empty sentence"
    if task.kind.class_logits:
        if not isinstance(label, int) or not 0 <= label < len(task.labels):
            return f"label {label!r} is not a class index 0..{len(task.labels) - 1} (test splits have -1)"
    elif task.score_range and not task.score_range[0] <= label <= task.score_range[1]:
        return f"score {label} is outside {task.score_range}"
    return None


def resolve_source(
    task: TaskSpec, data_dir: str | None, hub_dir: str | None = None, **reader_kw
) -> LocalSource | HubSource | FileSource:
    """The task's own files (task.files); data.hub_dir when set; else the first local folder holding the
    task's train file, else the hub."""
    if task.files is not None:
        return FileSource(task, **reader_kw)
    if hub_dir:
        if not Path(hub_dir).expanduser().is_dir():
            raise FileNotFoundError(f"data.hub_dir={hub_dir}: no such directory")
        return HubSource(task, str(Path(hub_dir).expanduser()))
    dirs = candidate_dirs(data_dir) if task.glue_dir else []  # a task only on the hub has no folder
    for glue_dir in dirs:
        if (glue_dir / task.glue_dir).is_dir():
            return LocalSource(glue_dir, task, **reader_kw)
    if data_dir:
        raise FileNotFoundError(f"data.dir={data_dir}: no {task.glue_dir}/ folder for task '{task.name}'")
    log.info("task %s: no local GLUE folder among %s; using the Hugging Face hub", task.name, dirs)
    return HubSource(task)
