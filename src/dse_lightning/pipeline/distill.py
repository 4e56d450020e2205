"""Distill stage: train a siamese student on the teacher's exported logits and evaluate it on dev.

The student trains in `<cache_dir>/students/<task>/<key>.work/`, keyed by everything that determines it
(teacher key, student and distill config, data, seed, trainer numerics), and resumes from it after a kill
(see resume.py). A finished student (its record and export) stays there until the run's results.json is
written, so a run killed in between reuses it instead of training again; then the work dir is retired.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..export import export_student, verify_export
from ..logits import load_logits
from ..losses import DistillLoss
from ..models.build import build_student, teacher_targets
from ..models.teacher_module import TeacherModule
from ..utils.io import atomic_dir, locked, sha256_json, write_json
from .common import build_datamodule, build_trainer, config_dict, strip_prefix
from .distributed import wait_for_rank_zero
from .folds import oof_provenance, oof_targets
from .resume import resume_checkpoint, retire_work_dir, verified_best
from .teacher import TRAINER_NUMERICS, logits_provenance

log = logging.getLogger(__name__)


def relative_degradation(teacher: dict[str, float], student: dict[str, float]) -> dict[str, float]:
    """(teacher - student) / teacher per metric, and their mean: the paper's measure (lower is better)."""
    rel = {k: (teacher[k] - student[k]) / teacher[k] for k in teacher if k in student and teacher[k]}
    return {**rel, "mean": sum(rel.values()) / len(rel)} if rel else {}


def _attach_targets(cfg: DictConfig, dm: GluePairDataModule, teacher: dict, task: TaskSpec, run_dir: Path):
    """Join the teacher's logits to the train rows by id, after checking they belong to this data."""
    expected = logits_provenance(dm, Path(teacher["checkpoint"]))
    path = teacher["logits"]
    if cfg.distill.teacher_folds > 1:
        path = oof_targets(cfg, task, teacher, run_dir)["logits"]
        expected = oof_provenance(expected, cfg.distill.teacher_folds, teacher["key"])
    logits = load_logits(path, expected, dm.ids("train"))
    dm.attach_teacher_logits(teacher_targets(task, logits))


TEACHER_SOURCES = ("artifact", "online")


def check_target_options(cfg: DictConfig) -> None:
    """Refuse option pairs that would silently not do what they say."""
    source, folds = cfg.distill.teacher_source, int(cfg.distill.teacher_folds)
    if source not in TEACHER_SOURCES:
        raise ValueError(f"distill.teacher_source={source} is not one of {list(TEACHER_SOURCES)}")
    if folds > 1 and source == "online":
        raise ValueError(
            "distill.teacher_folds>1 needs distill.teacher_source=artifact (fold logits are exported)"
        )
    if folds > 1 and cfg.teacher.checkpoint:
        raise ValueError(
            "distill.teacher_folds>1 fits fold teachers, so it cannot start from teacher.checkpoint"
        )


def _online_teacher(dm: GluePairDataModule, teacher: dict):
    """The cached teacher's cross-encoder, frozen; train batches then carry their pair encodings."""
    dm.pair_inputs = True
    module = TeacherModule.load_from_checkpoint(teacher["checkpoint"], map_location="cpu", weights_only=False)
    return module.model


def student_key(cfg: DictConfig, teacher: dict, dm: GluePairDataModule) -> str:
    """Hash of everything that determines the student (it names the student's work dir)."""
    paths = ("dir", "cache_dir", "num_workers", "eval_batch_size")  # where and how fast, not what
    data = {k: v for k, v in config_dict(cfg.data).items() if k not in paths}
    return sha256_json(
        {
            "teacher": teacher["key"],
            "student": config_dict(cfg.student),
            "distill": config_dict(cfg.distill),
            "data": {**data, "fingerprints": {s: dm.fingerprint(s) for s in dm.task.splits}},
            "seed": cfg.seed,
            "trainer": {k: cfg.trainer.get(k) for k in TRAINER_NUMERICS},
        }
    )[:16]


def student_work_dir(cfg: DictConfig, task: TaskSpec, key: str) -> Path:
    return Path(cfg.paths.cache_dir).resolve() / "students" / task.name / f"{key}.work"


def _fit_student(
    cfg: DictConfig, task: TaskSpec, teacher: dict, dm: GluePairDataModule, work: Path, run_dir: Path
) -> dict:
    """Train (or resume) the student in `work`, export it to `work/export`; its results.json entry."""
    alpha, source = float(cfg.distill.alpha), cfg.distill.teacher_source
    online = _online_teacher(dm, teacher) if alpha > 0 and source == "online" else None
    if alpha > 0 and online is None:
        _attach_targets(cfg, dm, teacher, task, run_dir)
    loss = DistillLoss(task.type, alpha=alpha, kind=cfg.distill.kind, temperature=cfg.distill.temperature)
    student = build_student(cfg.student, task)
    make_module = instantiate(cfg.student.module, _partial_=True, _convert_="object")
    module = make_module(task=task, student=student, loss=loss, teacher=online)
    trainer, ckpt_cb = build_trainer(
        cfg, task, run_dir / "student", cfg.student.max_epochs, work / "checkpoints"
    )
    start = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=resume_checkpoint(work, "student"), weights_only=False)
    best = verified_best(ckpt_cb.best_model_path or None, work, "student")
    log.info("student: best checkpoint %s (%s=%s)", best, ckpt_cb.monitor, ckpt_cb.best_model_score)
    metrics = trainer.validate(module, datamodule=dm, ckpt_path=best, weights_only=False)
    train_time = round(time.time() - start, 1)
    if trainer.is_global_zero:
        export_student(
            work / "export", module.student, dm.tokenizer, task.type, task.labels, dm.hparams.max_length
        )
    wait_for_rank_zero(trainer, "student exported")
    metrics = strip_prefix({k: v for d in metrics for k, v in d.items()}, "val/")
    return {
        "name": cfg.student.name,
        "alpha": alpha,
        "teacher_folds": int(cfg.distill.teacher_folds),
        "teacher_source": source,
        "loss": {"kind": loss.kind, "temperature": loss.temperature},  # `auto` resolved for the task
        "metrics": metrics,
        "relative_degradation": relative_degradation(teacher["metrics"], metrics),
        "params": sum(p.numel() for p in student.parameters()),
        "train_time_s": train_time,
    }


def _finished(work: Path) -> dict | None:
    """The record of a student a killed run finished (trained and exported) in `work`, if any."""
    if not (work / "student.json").is_file():
        return None
    verify_export(work / "export", f"delete {work} to train the student again")
    log.info("student: reusing the student finished in %s (its run stopped before results.json)", work)
    return {**json.loads((work / "student.json").read_text()), "reused": True}


def run_distill(cfg: DictConfig, task: TaskSpec, teacher: dict, run_dir: Path) -> dict:
    """The student's results.json entry: name, key, metrics, relative_degradation, params, export."""
    dm = build_datamodule(cfg, task, "sentence", cfg.teacher.tokenizer, cfg.student.batch_size)
    key = student_key(cfg, teacher, dm)
    work = student_work_dir(cfg, task, key)
    with locked(work, f"student: another job is training student {key}; waiting"):
        record = _finished(work)
        if record is None:
            record = {**_fit_student(cfg, task, teacher, dm, work, run_dir), "key": key, "reused": False}
            if rank_zero_only.rank == 0:  # under DDP every rank trained; one writes
                write_json(work / "student.json", record)  # the marker of a finished student: written last
        export = run_dir / "student" / "export"
        if rank_zero_only.rank == 0:
            with atomic_dir(export) as tmp:
                shutil.copytree(work / "export", tmp, dirs_exist_ok=True)
    return {**record, "export": str(export.resolve())}


def retire_student(cfg: DictConfig, task: TaskSpec, record: dict, run_dir: Path) -> None:
    """After results.json: move the student's checkpoints into the run dir, remove its work dir."""
    work = student_work_dir(cfg, task, record["key"])
    with locked(work):
        retire_work_dir(work, run_dir / "student")
