"""Teacher stage: fit (or reuse) the cross-encoder, evaluate it on dev, export its train-set logits.

Fitted teachers live in `<cache_dir>/teachers/<task>/<key>/`, where the key hashes everything that
changes the teacher (task, teacher config, data checksums, max length, seed, trainer numerics).
A later run with the same provenance reuses it; `teacher.json` is written last, so a half-published
teacher is never taken for a finished one.
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
from ..utils.io import atomic_dir, sha256_file, sha256_json, write_json
from .common import build_datamodule, build_trainer, config_dict, strip_prefix
from .distributed import gather_rows, wait_for_rank_zero

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
            "seed": cfg.seed,
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


def fit_or_load(cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, stage_dir: Path):
    trainer, ckpt_cb = build_trainer(cfg, task, stage_dir, cfg.teacher.max_epochs)
    if cfg.teacher.checkpoint:
        log.info("teacher: exporting from given checkpoint %s", cfg.teacher.checkpoint)
        module = TeacherModule.load_from_checkpoint(
            cfg.teacher.checkpoint, map_location="cpu", weights_only=False
        )
        metrics = trainer.validate(module, datamodule=dm)
    else:
        module = instantiate(cfg.teacher.module, _partial_=True, _convert_="object")(task=task)
        trainer.fit(module, datamodule=dm)
        best = ckpt_cb.best_model_path or None
        log.info("teacher: best checkpoint %s (%s=%s)", best, ckpt_cb.monitor, ckpt_cb.best_model_score)
        # Our own checkpoint: its hparams hold the TaskSpec and optimizer partials, not plain tensors.
        metrics = trainer.validate(module, datamodule=dm, ckpt_path=best, weights_only=False)
    return trainer, module, {k: v for d in metrics for k, v in d.items()}


def _publish(store: Path, trainer, module, dm: GluePairDataModule, record: dict, stage_dir: Path) -> dict:
    """Write weights, logits and teacher.json into `store` in one atomic directory rename (rank 0)."""
    weights = stage_dir / "model.ckpt"
    trainer.save_checkpoint(weights, weights_only=True)  # every rank calls it; rank 0 writes
    ids, logits = predict_train(trainer, module, dm)  # every rank predicts its share
    record = {**record, "checkpoint": str(store / "model.ckpt"), "logits": str(store / "logits.pt")}
    if trainer.is_global_zero:
        with atomic_dir(store) as tmp:
            shutil.move(weights, tmp / "model.ckpt")
            provenance = logits_provenance(dm, tmp / "model.ckpt")
            save_logits(tmp / "logits.pt", ids, logits, provenance)
            load_logits(tmp / "logits.pt", provenance, dm.ids("train"))  # verify the round trip first
            write_json(tmp / "teacher.json", record)
    wait_for_rank_zero(trainer, "teacher published")
    return record


def run_teacher(cfg: DictConfig, task: TaskSpec, run_dir: Path) -> dict:
    """The teacher's results.json entry: name, metrics, checkpoint, logits, params, key."""
    dm = build_datamodule(cfg, task, "pair", cfg.teacher.tokenizer, cfg.teacher.batch_size)
    key = teacher_key(cfg, dm)
    store = Path(cfg.paths.cache_dir).resolve() / "teachers" / task.name / key
    data = {s: dm.num_examples(s) for s in task.splits}
    if (store / "teacher.json").is_file() and not cfg.teacher.retrain:
        log.info("teacher: reusing %s (same task, config, data and seed)", store)
        return {**json.loads((store / "teacher.json").read_text()), "reused": True, "data": data}
    start = time.time()
    trainer, module, metrics = fit_or_load(cfg, task, dm, run_dir / "teacher")
    record = {
        "name": cfg.teacher.name,
        "key": key,
        "metrics": strip_prefix(metrics, "val/"),
        "params": sum(p.numel() for p in module.model.parameters()),
        "train_time_s": round(time.time() - start, 1),
    }
    record = _publish(store, trainer, module, dm, record, run_dir / "teacher")
    log.info("teacher: published %s", store)
    return {**record, "reused": False, "data": data}
