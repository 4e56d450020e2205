"""Typed results: what each stage returns and `results.json` holds; every report reads them through here.

`results.json` format 2 (written since the architecture change) replaced the student's `teacher_source` /
`teacher_folds` with `targets` and dropped the teacher's `sha256` (its store's manifest holds them);
`RunResult.from_json` still reads format 1, so the committed `experiments/` stay readable. Format 3 writes
the artifact paths (`PATH_FIELDS`) relative to the record's own folder, always; format 2 wrote them
relative to the working directory when they were under it (`RunResult.read` reads both). The committed
format-1 records, rewritten to that rule, say format 3 and keep their format-1 student fields: `from_json`
recognises those by their names, not by the number.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .utils.io import write_json
from .utils.portable import portable, resolve_path, resolve_portable

FORMAT = 3


def _known(cls, record: dict) -> dict:
    """The entries of `record` that are fields of `cls` (older records may carry others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in record.items() if k in names}


def relative_degradation(teacher: dict[str, float], student: dict[str, float]) -> dict[str, float]:
    """(teacher - student) / teacher per metric, and their mean: the paper's measure (lower is better)."""
    rel = {k: (teacher[k] - student[k]) / teacher[k] for k in teacher if k in student and teacher[k]}
    return {**rel, "mean": sum(rel.values()) / len(rel)} if rel else {}


PATH_FIELDS = (("teacher", "checkpoint"), ("teacher", "logits"), ("teacher", "export"), ("student", "export"))


def _map_paths(record: dict, fn) -> dict:
    """`record` with `fn` applied to each artifact path it holds."""
    out = dict(record)
    for model, key in PATH_FIELDS:
        if out.get(model) and out[model].get(key):
            out[model] = {**out[model], key: fn(out[model][key])}
    return out


def with_local_paths(record: dict, folder: Path) -> dict:
    """A results.json record whose artifact paths, written relative to the record's `folder` (format 3;
    format 2: to the working directory when under it, else to `folder`), point at the files from here."""
    if record.get("format", 1) >= 3:
        return _map_paths(record, lambda p: resolve_path(p, folder))
    return _map_paths(record, lambda p: resolve_portable(p, folder))


@dataclass
class TeacherResult:
    name: str
    key: str
    metrics: dict[str, float]  # dev metrics by name (acc, f1, pearson, ...)
    params: int
    test_metrics: dict[str, float] = field(default_factory=dict)  # the task's test split, evaluated once
    train_time_s: float | None = None
    checkpoint: str = ""  # the published model.ckpt ("" for a teacher of score files: no model)
    logits: str = ""  # the published train-set logits
    export: str = ""  # the run's copy of its CrossEncoder folder (`CrossEncoder(path)`)
    reused: bool = False  # taken from the store, not fitted by this run
    # What its logits' provenance names (Provenance.teacher_checkpoint): the sha256 of model.ckpt, or of the
    # score files. Every reader of its logits checks them against it.
    identity: str = ""
    # What it was made from besides its config, by content: [{"option", "name" (as given), "sha256"}] of a
    # ready model (its weight files), score files or a given checkpoint. Its store key hashes these.
    inputs: list[dict] = field(default_factory=list)


@dataclass
class StudentResult:
    name: str
    alpha: float
    metrics: dict[str, float]
    params: int
    test_metrics: dict[str, float] = field(default_factory=dict)  # the task's test split, evaluated once
    relative_degradation: dict[str, float] = field(default_factory=dict)
    loss: dict = field(default_factory=dict)  # {"kind": "kl", "temperature": 2.0}
    targets: dict = field(default_factory=dict)  # {"source": "logits" | "online" | "folds", ...}
    train_time_s: float | None = None
    key: str = ""
    reused: bool = False
    export: str = ""  # the exported student folder (load_student)

    @classmethod
    def from_json(cls, record: dict) -> StudentResult:
        record = dict(record)
        if "targets" not in record:  # format 1
            folds = int(record.get("teacher_folds", 1))
            source = (
                "folds" if folds > 1 else {"online": "online"}.get(record.get("teacher_source"), "logits")
            )
            record["targets"] = {"source": source, **({"folds": folds} if folds > 1 else {})}
        return cls(**_known(cls, record))


@dataclass
class RunResult:
    task: str
    stage: str
    seed: int
    data: dict[str, int]  # rows per split
    teacher: TeacherResult
    student: StudentResult | None = None
    commit: str | None = None
    torch_threads: int | None = None  # CPU float sums, hence a few predictions, depend on it
    wall_time_s: float | None = None
    overrides: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # torch, transformers, lightning, ...
    models: dict[str, dict[str, str]] = field(default_factory=dict)  # embedded model -> weight sha256s

    @property
    def model(self) -> TeacherResult | StudentResult:
        """The run's final model: the student when there is one."""
        return self.student or self.teacher

    def to_json(self) -> dict:
        record = {"format": FORMAT, **asdict(self)}
        if self.student is None:
            record.pop("student")
        return record

    @classmethod
    def from_json(cls, record: dict) -> RunResult:
        record = _known(cls, record)
        record["teacher"] = TeacherResult(**_known(TeacherResult, record["teacher"]))
        if record.get("student"):
            record["student"] = StudentResult.from_json(record["student"])
        return cls(**record)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """The record at `path`, its artifact paths usable from here (`with_local_paths`)."""
        return cls.from_json(with_local_paths(json.loads(Path(path).read_text()), Path(path).parent))

    def write(self, path: str | Path) -> Path:
        """results.json with no absolute path of this machine in it: its artifact paths relative to its
        own folder, wherever they were given from (utils/portable.py)."""
        record = _map_paths(self.to_json(), os.path.abspath)
        return write_json(path, portable(record, Path(path).parent))


@dataclass
class MultiTaskResult:
    """A multi-task run (`tasks=`): each task's RunResult (its teacher; the shared student on that task) and
    the shared student's record (its mean monitored score, sampling rule, key). `<run>/results.json` holds a
    section per task; each task's whole record is `<run>/<task>/results.json`."""

    tasks: dict[str, RunResult]
    student: dict

    @property
    def score(self) -> float | None:
        return self.student.get("score")

    def to_json(self) -> dict:
        sections = {
            name: {
                "teacher": {"name": r.teacher.name, "key": r.teacher.key, "metrics": r.teacher.metrics},
                "student": {
                    "metrics": r.student.metrics,
                    "relative_degradation": r.student.relative_degradation,
                },
                "record": f"{name}/results.json",
            }
            for name, r in self.tasks.items()
        }
        return {
            "format": FORMAT,
            "seed": next(iter(self.tasks.values())).seed,
            "multitask": {**self.student, "export": "student/export"},
            "tasks": sections,
        }

    def write(self, run_dir: Path) -> None:
        for name, result in self.tasks.items():
            result.write(run_dir / name / "results.json")
        write_json(run_dir / "results.json", portable(self.to_json(), run_dir))
