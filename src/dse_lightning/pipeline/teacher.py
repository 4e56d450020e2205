"""Teacher stage: fit (or reuse) the cross-encoder, evaluate it on dev, export its train-set logits.

A fitted teacher is an artifact of the store (store.py), `<cache_dir>/teachers/<task>/<key>/` with
`model.ckpt`, `logits.pt` and `cross_encoder/` (teacher_export.py), its record in the manifest's meta; the
key hashes everything that changes the teacher (task, teacher config, data checksums, max length, seed,
trainer numerics). A later run with the same provenance reuses it; a fit checkpoints into `<key>.work/` and
resumes from it after a kill. Every run copies the export to `<run dir>/teacher/cross_encoder`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..logits import load_logits, save_logits
from ..models.teacher_module import TeacherModule
from ..results import TeacherResult
from ..store import Artifact, Store, retire_work
from ..utils.io import sha256_file, sha256_json
from .common import build_datamodule, build_trainer, config_dict, fit_and_validate, val_metrics
from .distributed import wait_for_rank_zero
from .inference import SplitRows, predict_logits
from .teacher_export import EXPORT, copy_teacher_export, export_teacher

log = logging.getLogger(__name__)
TRAINER_NUMERICS = ("precision", "accumulate_grad_batches", "gradient_clip_val", "limit_train_batches")


def teacher_key(cfg: DictConfig, dm: GluePairDataModule) -> str:
    teacher = {k: v for k, v in config_dict(cfg.teacher).items() if k != "retrain"}
    if not teacher.get("both_orders"):  # options added later: at their default, the teacher is as before
        teacher.pop("both_orders", None)
    task = {k: v for k, v in config_dict(cfg.task).items() if k != "symmetric"}  # gates an option only
    if teacher.get("checkpoint"):
        teacher["checkpoint"] = sha256_file(teacher["checkpoint"])
    return sha256_json(
        {
            "task": task,
            "teacher": teacher,
            "data": {s: dm.fingerprint(s) for s in dm.task.splits},
            "max_length": dm.hparams.max_length,
            "seed": cfg.teacher.seed,
            "trainer": {k: cfg.trainer.get(k) for k in TRAINER_NUMERICS},
        }
    )[:16]


def logits_file(split: str) -> str:
    """The teacher artifact's file of a split's logits: `logits.pt` (train), `<split>.logits.pt`."""
    return "logits.pt" if split == "train" else f"{split}.logits.pt"


def teacher_data(cfg: DictConfig, task: TaskSpec, **data) -> GluePairDataModule:
    """The pair view, in the teacher's own batches (`teacher.group_by_length`)."""
    group, both = cfg.teacher.group_by_length, cfg.teacher.get("both_orders", False)
    tokenizer, batch = cfg.teacher.tokenizer, cfg.teacher.batch_size
    return build_datamodule(
        cfg, task, "pair", tokenizer, batch, group_by_length=group, both_orders=both, **data
    )


def teacher_store(cfg: DictConfig, task: TaskSpec) -> Store:
    root = Path(cfg.paths.cache_dir).resolve() / "teachers" / task.name
    return Store(root, "teacher", "delete {path} (or run with teacher.retrain=true) to fit the teacher again")


def fit_or_load(cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, stage_dir: Path, work: Path):
    """Fit a teacher (resuming from `work` if a killed run left a checkpoint there), or load the given
    `teacher.checkpoint`; returns the trainer, the module and its dev metrics."""
    trainer, ckpt_cb = build_trainer(cfg, task, stage_dir, cfg.teacher.max_epochs, work / "checkpoints")
    if cfg.teacher.checkpoint:
        log.info("teacher: exporting from given checkpoint %s", cfg.teacher.checkpoint)
        module = TeacherModule.load_from_checkpoint(
            cfg.teacher.checkpoint, map_location="cpu", weights_only=False
        )
        return trainer, module, val_metrics(trainer.validate(module, datamodule=dm))
    module = instantiate(cfg.teacher.module, _partial_=True, _convert_="object")(task=task)
    return trainer, module, fit_and_validate(trainer, ckpt_cb, module, dm, work, "teacher")


def _fit_and_publish(
    cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, store: Store, key: str, run_dir: Path
) -> Artifact:
    start, work = time.time(), store.work_dir(key)
    trainer, module, metrics = fit_or_load(cfg, task, dm, run_dir / "teacher", work)
    record = {
        "name": cfg.teacher.name,
        "key": key,
        "metrics": metrics,
        "params": sum(p.numel() for p in module.model.parameters()),
        "train_time_s": round(time.time() - start, 1),
        "data": {s: dm.num_examples(s) for s in task.splits},
    }
    trainer.save_checkpoint(work / "model.ckpt", weights_only=True)  # every rank calls it; rank 0 writes
    # Every rank predicts its share: train (the student's targets) and dev (what an ensemble is judged by).
    predicted = {split: predict_logits(trainer, module, SplitRows(dm, split)) for split in task.splits}

    def write(tmp: Path) -> dict:
        shutil.move(work / "model.ckpt", tmp / "model.ckpt")
        for split, logits in predicted.items():
            provenance = dm.provenance(sha256_file(tmp / "model.ckpt"), split)
            path = tmp / logits_file(split)
            save_logits(path, logits.ids, logits.values, provenance)
            load_logits(path, provenance, dm.ids(split))  # verify the round trip before publishing
        export_teacher(task, dm, module, record, tmp / EXPORT)
        return record

    artifact = store.publish(key, write, barrier=lambda: wait_for_rank_zero(trainer, "teacher published"))
    if trainer.is_global_zero:
        retire_work(work, run_dir / "teacher")
    log.info("teacher: published %s", artifact.path)
    return artifact


def run_teacher(cfg: DictConfig, task: TaskSpec, run_dir: Path) -> tuple[TeacherResult, dict[str, int]]:
    """The teacher's result and the rows per split of the task's data."""
    dm = teacher_data(cfg, task, seed=cfg.teacher.seed)
    key, store = teacher_key(cfg, dm), teacher_store(cfg, task)
    build = lambda: _fit_and_publish(cfg, task, dm, store, key, run_dir)  # noqa: E731
    export = run_dir / "teacher" / EXPORT
    use = lambda artifact: copy_teacher_export(task, dm, artifact, export)  # noqa: E731
    artifact = store.get_or_build(key, build, rebuild=cfg.teacher.retrain, use=use)
    if artifact.reused:
        log.info("teacher: reusing %s (same task, config, data and seed)", artifact.path)
    record = dict(artifact.meta)
    data = record.pop("data")
    paths = {"checkpoint": str(artifact.path / "model.ckpt"), "logits": str(artifact.path / "logits.pt")}
    return TeacherResult(**record, **paths, export=str(export.resolve()), reused=artifact.reused), data
