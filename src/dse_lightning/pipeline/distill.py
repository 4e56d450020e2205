"""Distill stage: train a siamese student on the teacher's exported logits and evaluate it on dev."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..export import export_student
from ..logits import load_logits
from ..losses import DistillLoss
from ..models.build import build_student, teacher_targets
from ..models.teacher_module import TeacherModule
from .common import build_datamodule, build_trainer, strip_prefix
from .distributed import wait_for_rank_zero
from .folds import oof_provenance, oof_targets
from .teacher import logits_provenance

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


def run_distill(cfg: DictConfig, task: TaskSpec, teacher: dict, run_dir: Path) -> dict:
    """The student's results.json entry: name, metrics, relative_degradation, params, export."""
    dm = build_datamodule(cfg, task, "sentence", cfg.teacher.tokenizer, cfg.student.batch_size)
    alpha, source = float(cfg.distill.alpha), cfg.distill.teacher_source
    online = _online_teacher(dm, teacher) if alpha > 0 and source == "online" else None
    if alpha > 0 and online is None:
        _attach_targets(cfg, dm, teacher, task, run_dir)
    loss = DistillLoss(task.type, alpha=alpha, kind=cfg.distill.kind, temperature=cfg.distill.temperature)
    student = build_student(cfg.student, task)
    make_module = instantiate(cfg.student.module, _partial_=True, _convert_="object")
    module = make_module(task=task, student=student, loss=loss, teacher=online)
    stage_dir = run_dir / "student"
    trainer, ckpt_cb = build_trainer(cfg, task, stage_dir, cfg.student.max_epochs)
    start = time.time()
    trainer.fit(module, datamodule=dm)
    log.info(
        "student: best checkpoint %s (%s=%s)",
        ckpt_cb.best_model_path,
        ckpt_cb.monitor,
        ckpt_cb.best_model_score,
    )
    best = ckpt_cb.best_model_path or None
    metrics = trainer.validate(module, datamodule=dm, ckpt_path=best, weights_only=False)
    train_time = round(time.time() - start, 1)
    export = stage_dir / "export"
    if trainer.is_global_zero:
        export_student(export, module.student, dm.tokenizer, task.type, task.labels, dm.hparams.max_length)
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
        "export": str(export.resolve()),
        "train_time_s": train_time,
    }
