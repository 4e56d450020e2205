"""A teacher of score files (`teacher=scores`): logits or scores from a system outside Python.

`teacher.train` (required) and `teacher.dev` (optional: the teacher's dev metrics) are JSON-lines (.jsonl) or
CSV (.csv) files, read with `datasets`' own loaders. A row names its pair by `id` (the example id of the
task's data) or, without an `id` column, by `sentence1` and `sentence2`; it gives either `logits`, one per
label in the task's label order (JSON lines: a list; CSV: columns logit_0 .. logit_{C-1}), or `score`: a
regression task's score in its own units, or a binary task's one logit z of its second label, read as the
logits [0, z] as `teacher/outputs=one_logit` reads a model's (z1 - z0 = z). Every pair of the split needs
exactly one row; rows for other pairs are ignored. A repeated or missing pair, or a value that is not a
finite number, is an error naming the file and line.

The logits are published as a fitted teacher's are (`logits.pt`, `<split>.logits.pt` with provenance) in
the teacher store, keyed by the files' sha256; the provenance names the teacher by them. There is no model,
so nothing can score new pairs: options.py refuses transfer sets and targets=online|folds|ensemble.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import re
import tempfile
import time
from pathlib import Path

import datasets
import torch
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..logits import KeyedLogits, load_logits, save_logits
from ..models.teacher_outputs import OneLogit, Score
from ..options import OptionError
from ..store import Artifact, Store
from ..utils.io import sha256_file, sha256_json
from .teacher import TeacherSource, logits_file

log = logging.getLogger(__name__)
SUFFIXES = (".jsonl", ".csv")
LOGIT_COLUMN = re.compile(r"logit_(\d+)")


def option_name(split: str) -> str:
    """The option a split's file is given by."""
    return {"train": "teacher.train", "dev": "teacher.dev"}.get(split, f"teacher.source.files.{split}")


def line_of(path: Path, row: int) -> int:
    """The line of data row `row` (0-based) of the file, as the loaders count rows: JSON lines skip blank
    lines; CSV its header and blank lines (a record with a quoted line break starts on the line given)."""
    with path.open(encoding="utf-8", newline="") as fh:
        if path.suffix == ".csv":
            reader, index, start = csv.reader(fh), -1, 1  # the header is row -1
            for record in reader:
                if record:  # a blank line is no row
                    if index == row:
                        return start
                    index += 1
                start = reader.line_num + 1
            return -1
        filled = (n for n, line in enumerate(fh, 1) if line.strip())
        return next(itertools.islice(filled, row, None), -1)


def load_table(path: Path, cache: Path) -> dict[str, list]:
    """The file's columns. CSV cells stay text (a sentence "NA" is a sentence); values are parsed by row."""
    try:
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                header = next(csv.reader(fh), [])
            kwargs = {"keep_default_na": False, "converters": {name: str for name in header}}
            table = datasets.Dataset.from_csv(str(path), cache_dir=str(cache), **kwargs)
        else:
            table = datasets.Dataset.from_json(str(path), cache_dir=str(cache))
    except Exception as err:  # the loaders' parse errors (pyarrow, pandas), wrapped by datasets
        raise OptionError(f"{path}: unreadable as {path.suffix[1:]} ({err.__cause__ or err})") from err
    return table.to_dict()


def number(value, path: Path, row: int, column: str) -> float:
    """A finite float of a cell (JSON number or CSV text), else an error naming the file and line."""
    try:
        if isinstance(value, bool):
            raise ValueError
        parsed = float(value)
    except (TypeError, ValueError):
        parsed = math.nan
    if not math.isfinite(parsed):
        raise OptionError(f"{path}: line {line_of(path, row)}: {column} {value!r} is not a finite number")
    return parsed


class ScoreTable:
    """One file's rows: their keys (id, or sentence pair) and their values (N, M), checked by row."""

    def __init__(self, path: Path, columns: dict[str, list], task: TaskSpec) -> None:
        self.path, self.task = path, task
        self.by_id = "id" in columns  # else by sentence pair
        self.keys = self._keys(columns)
        self.values, self.column = self._values(columns)

    def _keys(self, columns: dict[str, list]) -> list:
        if self.by_id:
            return [str(i) for i in columns["id"]]
        if {"sentence1", "sentence2"} <= columns.keys():
            return list(zip(columns["sentence1"], columns["sentence2"], strict=True))
        raise OptionError(f"{self.path}: no `id` column, nor `sentence1` and `sentence2`, to join rows by")

    def _logit_columns(self, columns: dict[str, list]) -> list[str]:
        if "logits" in columns:  # JSON lines: one list per row
            return ["logits"]
        found = sorted((c for c in columns if LOGIT_COLUMN.fullmatch(c)), key=lambda c: int(c[6:]))
        expected = [f"logit_{i}" for i in range(self.task.num_labels)]
        if found and found != expected:
            raise OptionError(f"{self.path}: logit columns {found}; {self.task.name} needs {expected}")
        return found

    def _values(self, columns: dict[str, list]) -> tuple[list[list[float]], str]:
        logits, score = self._logit_columns(columns), "score" in columns
        if bool(logits) == score:
            raise OptionError(
                f"{self.path}: needs either `logits` (JSON lines: a list; CSV: logit_0 .. logit_"
                f"{self.task.num_labels - 1}) or `score`, not {'both' if score else 'neither'}"
            )
        if score:
            return [[number(v, self.path, r, "score")] for r, v in enumerate(columns["score"])], "score"
        if logits == ["logits"]:
            return [self._logit_list(v, r) for r, v in enumerate(columns["logits"])], "logits"
        cells = enumerate(zip(*(columns[c] for c in logits), strict=True))  # (row, its logit cells)
        parse = lambda r, row: [number(row[i], self.path, r, c) for i, c in enumerate(logits)]  # noqa: E731
        return [parse(r, row) for r, row in cells], "logits"

    def _logit_list(self, value, row: int) -> list[float]:
        if not isinstance(value, list) or len(value) != self.task.num_labels:
            raise OptionError(
                f"{self.path}: line {line_of(self.path, row)}: logits {value!r} is not a list of "
                f"{self.task.num_labels} numbers (one per label of {self.task.name}: {self.task.labels})"
            )
        return [number(v, self.path, row, "logits") for v in value]

    def join(self, rows: datasets.Dataset, split: str) -> KeyedLogits:
        """The task-space logits (N, C) of the split's rows, by id: every row needs exactly one file row."""
        index: dict = {}
        for r, key in enumerate(self.keys):
            if key in index:
                first = line_of(self.path, index[key])
                raise OptionError(f"{self.path}: line {line_of(self.path, r)}: {key!r} repeats line {first}")
            index[key] = r
        pairs = zip(rows["sentence1"], rows["sentence2"], strict=True)
        wanted = list(rows["id"]) if self.by_id else list(pairs)
        if missing := [k for k in wanted if k not in index]:
            raise OptionError(
                f"{self.path}: no row for {len(missing)} of the {len(wanted)} pairs of {self.task.name}/"
                f"{split} (first: {missing[0]!r}); it needs one for every pair, by "
                f"{'id' if self.by_id else 'sentence1 and sentence2'}"
            )
        if unused := len(index) - len(set(wanted)):
            log.info("%s: %d rows name no pair of %s/%s (ignored)", self.path, unused, self.task.name, split)
        values = torch.tensor([self.values[index[k]] for k in wanted], dtype=torch.float32)  # (N, M)
        return KeyedLogits(list(rows["id"]), self._read(values), str(self.path))

    def _read(self, values: torch.Tensor) -> torch.Tensor:
        """(N, M) -> the task's logits (N, C): a score as a model's one output is read (OneLogit, Score)."""
        if self.column == "logits":
            return values
        reading = next((m for m in (OneLogit(), Score()) if m.refusal(self.task) is None), None)
        if reading is None:
            raise OptionError(
                f"{self.path}: one `score` per row cannot give the {self.task.num_labels} logits of "
                f"{self.task.name}: give `logits`"
            )
        return reading(values, self.task)


def check_dev(path: Path, task: TaskSpec, split: str, logits: torch.Tensor, gold: list) -> None:
    """Refuse dev logits (N, C) that plainly do not read as the gold labels (`TaskKind.implausible`)."""
    if why := task.kind.implausible(logits, torch.tensor(gold, dtype=task.kind.label_dtype)):
        order = f"its logits in the label order {task.labels} (a binary score: the logit of the last)"
        expected = order if task.kind.class_logits else "its scores rising with the task's"
        raise OptionError(f"{path}: {why} on {task.name}/{split}: are {expected}?")


class ScoreFiles(TeacherSource):
    """The teacher of `teacher=scores`: a file of logits or scores per split (`files`: split -> path)."""

    predicts = False  # no model: nothing labels new pairs

    def __init__(self, files: dict[str, str | None]) -> None:
        self.files = {split: str(path) for split, path in files.items() if path}  # as given: the key's names

    def option_errors(self, cfg: DictConfig, task: TaskSpec) -> list[str]:
        errors = [] if "train" in self.files else ["teacher.train=null: the train split's logits are needed"]
        for split, path in self.files.items():
            where = f"{option_name(split)}={path}"
            if split not in task.splits:
                errors.append(f"{where}: task {task.name} has no split {split} ({list(task.splits)})")
            elif Path(path).suffix not in SUFFIXES:
                errors.append(f"{where}: a JSON-lines (.jsonl) or CSV (.csv) file is expected")
            elif not Path(path).is_file():
                errors.append(f"{where}: no such file")
        return errors

    def inputs(self, cfg: DictConfig) -> list[dict]:
        return [
            {"option": option_name(split), "name": path, "sha256": sha256_file(path)}
            for split, path in self.files.items()
        ]

    def read(self, task: TaskSpec, rows: dict[str, datasets.Dataset], cache: Path) -> dict[str, KeyedLogits]:
        """Each given split's logits, joined to its rows; a plainly wrong dev reading is refused."""
        logits = {}
        for split, name in self.files.items():
            path = Path(name)
            table = ScoreTable(path, load_table(path, cache), task)
            logits[split] = table.join(rows[split], split)
            if split in task.eval_splits:
                check_dev(path, task, split, logits[split].values, rows[split]["label"])
        return logits

    def publish(
        self, cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, store: Store, key: str, run_dir: Path
    ) -> Artifact:
        start, rows = time.time(), {split: dm.raw(split) for split in task.splits}
        # The loaders' arrow cache is theirs alone: datasets' shared one keys a file by its path and date.
        with tempfile.TemporaryDirectory(prefix="dse-score-files-") as cache:
            logits = self.read(task, rows, Path(cache))
        metrics = {}
        for split in (s for s in task.eval_splits if s in logits):
            metrics |= task.evaluate(split, logits[split].values, rows[split]["label"])
        identity = sha256_json({i["option"]: i["sha256"] for i in self.inputs(cfg)})
        record = {
            "name": cfg.teacher.name,
            "key": key,
            "metrics": metrics,
            "params": 0,  # no model
            "train_time_s": round(time.time() - start, 1),
            "data": {split: len(split_rows) for split, split_rows in rows.items()},
            "identity": identity,
        }

        def write(tmp: Path) -> dict:
            for split, keyed in logits.items():
                provenance, path = dm.provenance(identity, split), tmp / logits_file(split)
                save_logits(path, keyed.ids, keyed.values, provenance)
                load_logits(path, provenance, keyed.ids)  # verify the round trip before publishing
            return record

        # No barrier: under DDP the other processes start with the first Trainer (the student's), after this.
        artifact = store.publish(key, write)
        log.info("teacher: published the logits of %s in %s", sorted(self.files), artifact.path)
        return artifact
