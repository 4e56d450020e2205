"""Teacher stage: fit (or reuse) the cross-encoder, evaluate it on dev, export its train-set logits.

Fitted teachers live in `<cache_dir>/teachers/<task>/<key>/`, where the key hashes everything that
changes the teacher (task, teacher config, data checksums, max length, seed, trainer numerics).
A later run with the same provenance reuses it; `teacher.json` is written last, so a half-published
teacher is never taken for a finished one, and it records the sha256 of `model.ckpt` and `logits.pt`,
checked on reuse. The fit checkpoints into `<key>.work/` beside the store and resumes from it after a
kill (see resume.py); a lock on the key makes a second job wait for the first and reuse its teacher.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.encode import tokenizer_fingerprint
from ..data.tasks import TaskSpec
from ..logits import Provenance, load_logits, save_logits
from ..models.teacher_module import TeacherModule
from ..utils.io import atomic_dir, check_sha256, locked, sha256_file, sha256_json, write_json
from .common import build_datamodule, build_trainer, config_dict, strip_prefix
from .distributed import gather_rows, wait_for_rank_zero
from .resume import resume_checkpoint, retire_work_dir, verified_best

log = logging.getLogger(__name__)
TRAINER_NUMERICS = ("precision", "accumulate_grad_batches", "gradient_clip_val", "limit_train_batches")


def teacher_key(cfg: DictConfig, dm: GluePairDataModule) -> str:
    teacher = {k: v for k, v in config_dict(cfg.teacher).items() if k != "retrain"}
    if teacher.get("checkpoint"):
        teacher["checkpoint"] = sha256_file(teacher["checkpoint"])
    return sha256_json(
        {
            "task": config_dict(cfg.task),
            "teacher": teacher,
            "data": {s: dm.fingerprint(s) for s in dm.task.splits},
            "max_length": dm.hparams.max_length,
            "seed": cfg.teacher.seed,
            "trainer": {k: cfg.trainer.get(k) for k in TRAINER_NUMERICS},
        }
    )[:16]


def logits_provenance(dm: GluePairDataModule, checkpoint: Path) -> Provenance:
    return Provenance(
        task=dm.task.name,
        split="train",
        teacher_checkpoint=sha256_file(checkpoint),
        tokenizer=tokenizer_fingerprint(dm.tokenizer),
        max_length=dm.hparams.max_length,
        data_checksum=dm.fingerprint("train"),
    )


def predict_train(trainer, module, dm: GluePairDataModule) -> tuple[list[str], torch.Tensor]:
    """Logits (N, C) of every train row, in file order, gathered from all processes."""
    batches = trainer.predict(module, datamodule=dm)
    ids = [i for b in batches for i in b["ids"]]
    return gather_rows(trainer, ids, torch.cat([b["logits"] for b in batches]), dm.ids("train"))


def fit_or_load(cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, stage_dir: Path, work_dir: Path):
    """Fit a teacher (resuming from `work_dir` if a killed run left a checkpoint there), or load the
    given `teacher.checkpoint`; returns the trainer, the module and its dev metrics."""
    trainer, ckpt_cb = build_trainer(cfg, task, stage_dir, cfg.teacher.max_epochs, work_dir / "checkpoints")
    if cfg.teacher.checkpoint:
        log.info("teacher: exporting from given checkpoint %s", cfg.teacher.checkpoint)
        module = TeacherModule.load_from_checkpoint(
            cfg.teacher.checkpoint, map_location="cpu", weights_only=False
        )
        metrics = trainer.validate(module, datamodule=dm)
    else:
        module = instantiate(cfg.teacher.module, _partial_=True, _convert_="object")(task=task)
        resume = resume_checkpoint(work_dir, "teacher")
        trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=False)
        best = verified_best(ckpt_cb.best_model_path or None, work_dir, "teacher")
        log.info("teacher: best checkpoint %s (%s=%s)", best, ckpt_cb.monitor, ckpt_cb.best_model_score)
        # Our own checkpoint: its hparams hold the TaskSpec and optimizer partials, not plain tensors.
        metrics = trainer.validate(module, datamodule=dm, ckpt_path=best, weights_only=False)
    return trainer, module, {k: v for d in metrics for k, v in d.items()}


def _publish(store: Path, trainer, module, dm: GluePairDataModule, record: dict, stage_dir: Path) -> dict:
    """Write weights, logits and teacher.json into `store` in one atomic directory rename (rank 0)."""
    weights = stage_dir / "model.ckpt"
    trainer.save_checkpoint(weights, weights_only=True)  # every rank calls it; rank 0 writes
    ids, logits = predict_train(trainer, module, dm)  # every rank predicts its share
    if trainer.is_global_zero:
        record = _write_store(store, weights, ids, logits, dm, record)
    wait_for_rank_zero(trainer, "teacher published")
    return json.loads((store / "teacher.json").read_text())


def _write_store(store: Path, weights: Path, ids, logits, dm: GluePairDataModule, record: dict) -> dict:
    with atomic_dir(store) as tmp:
        shutil.move(weights, tmp / "model.ckpt")
        provenance = logits_provenance(dm, tmp / "model.ckpt")
        save_logits(tmp / "logits.pt", ids, logits, provenance)
        load_logits(tmp / "logits.pt", provenance, dm.ids("train"))  # verify the round trip before publishing
        record = {
            **record,
            "checkpoint": str(store / "model.ckpt"),
            "logits": str(store / "logits.pt"),
            "sha256": {
                "model.ckpt": provenance.teacher_checkpoint,
                "logits.pt": sha256_file(tmp / "logits.pt"),
            },
        }
        write_json(tmp / "teacher.json", record)
    return record


def _reuse(store: Path) -> dict | None:
    """The published teacher's record after checking its files' sha256; None if there is none."""
    if not (store / "teacher.json").is_file():
        return None
    record = json.loads((store / "teacher.json").read_text())
    remedy = f"delete {store} (or run with teacher.retrain=true) to fit the teacher again"
    for name, digest in record.get("sha256", {}).items():  # teachers published before checksums: none
        check_sha256(store / name, digest, store / "teacher.json", remedy)
    log.info("teacher: reusing %s (same task, config, data and seed)", store)
    return {**record, "reused": True}


def _fit_and_publish(
    cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, key: str, store: Path, run_dir: Path
):
    start = time.time()
    work = store.with_name(f"{key}.work")
    trainer, module, metrics = fit_or_load(cfg, task, dm, run_dir / "teacher", work)
    record = {
        "name": cfg.teacher.name,
        "key": key,
        "metrics": strip_prefix(metrics, "val/"),
        "params": sum(p.numel() for p in module.model.parameters()),
        "train_time_s": round(time.time() - start, 1),
    }
    record = _publish(store, trainer, module, dm, record, run_dir / "teacher")
    if trainer.is_global_zero:
        retire_work_dir(work, run_dir / "teacher")
    log.info("teacher: published %s", store)
    return {**record, "reused": False}


def run_teacher(cfg: DictConfig, task: TaskSpec, run_dir: Path) -> dict:
    """The teacher's results.json entry: name, metrics, checkpoint, logits, params, key."""
    dm = build_datamodule(cfg, task, "pair", cfg.teacher.tokenizer, cfg.teacher.batch_size, cfg.teacher.seed)
    key = teacher_key(cfg, dm)
    store = Path(cfg.paths.cache_dir).resolve() / "teachers" / task.name / key
    data = {s: dm.num_examples(s) for s in task.splits}
    record = None if cfg.teacher.retrain else _reuse(store)
    if record is None:
        with locked(store, f"teacher: another job is fitting teacher {key}; waiting to reuse it"):
            # Reuse what another job published while we waited (retrain: that is what we would fit).
            record = None if cfg.teacher.retrain else _reuse(store)
            record = record or _fit_and_publish(cfg, task, dm, key, store, run_dir)
    return {**record, "data": data}
