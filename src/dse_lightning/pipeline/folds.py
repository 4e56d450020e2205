"""Out-of-fold teacher targets: `distill.teacher_folds=k`.

A teacher's logits on its own training rows are over-confident (it has fit them). With k > 1 folds,
k teachers are fit on k-1 folds each and every train row takes its logits from the teacher that did
not see it. The result is a logits artifact like the single teacher's, stored beside it in
`<teacher store>/oof<k>/`; its `teacher_checkpoint` provenance names the fold set (`oof<k>-<key>`),
since the fold teachers' weights are not kept. Each fold fits in `oof<k>.work/fold<j>/` and resumes from
it after a kill; `oof.json` records the logits' sha256, checked on reuse.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..logits import Provenance, load_logits, save_logits
from ..utils.io import atomic_dir, check_sha256, locked, sha256_file, write_json
from .common import build_datamodule, strip_prefix
from .distributed import wait_for_rank_zero
from .resume import retire_work_dir
from .teacher import fit_or_load, logits_provenance, predict_train

log = logging.getLogger(__name__)


def fold_of_rows(n: int, k: int, seed: int) -> list[int]:
    """Fold index of each of n rows: a seeded permutation dealt round-robin (sizes differ by <= 1)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    folds = [0] * n
    for position, row in enumerate(order):
        folds[row] = position % k
    return folds


def oof_provenance(single: Provenance, k: int, teacher_key: str) -> Provenance:
    """The single teacher's provenance with the fold set (`oof<k>-<key>`) as its checkpoint."""
    return dataclasses.replace(single, teacher_checkpoint=f"oof{k}-{teacher_key}")


def _fit_fold(cfg, task, dm: GluePairDataModule, folds: list[int], j: int, run_dir: Path, work: Path):
    keep = [i for i, f in enumerate(folds) if f != j]
    held = [i for i, f in enumerate(folds) if f == j]
    trainer, module, metrics = fit_or_load(cfg, task, dm.with_train_rows(keep), run_dir / f"fold{j}", work)
    ids, logits = predict_train(trainer, module, dm.with_train_rows(held))
    log.info("teacher fold %d/%d: fit on %d rows, dev %s", j + 1, len(set(folds)), len(keep), metrics)
    return ids, logits, strip_prefix(metrics, "val/"), trainer


def _reuse(store: Path) -> dict | None:
    if not (store / "oof.json").is_file():
        return None
    record = json.loads((store / "oof.json").read_text())
    if "sha256" in record:  # fold sets published before checksums have none
        check_sha256(
            record["logits"], record["sha256"], store / "oof.json", f"delete {store} to refit the folds"
        )
    log.info("teacher folds: reusing %s", store)
    return record


def oof_targets(cfg: DictConfig, task: TaskSpec, teacher: dict, run_dir: Path) -> dict:
    """{"logits": path, "teacher_checkpoint": id, "folds": [dev metrics...]}, fitting the folds if needed."""
    k = int(cfg.distill.teacher_folds)
    store = Path(teacher["checkpoint"]).parent / f"oof{k}"
    if record := _reuse(store):
        return record
    with locked(store, f"teacher folds: another job is fitting {store}; waiting to reuse them"):
        return _reuse(store) or _fit_folds(cfg, task, teacher, k, store, run_dir / "teacher_folds")


def _fit_folds(cfg: DictConfig, task: TaskSpec, teacher: dict, k: int, store: Path, run_dir: Path) -> dict:
    dm = build_datamodule(cfg, task, "pair", cfg.teacher.tokenizer, cfg.teacher.batch_size)
    folds = fold_of_rows(dm.num_examples("train"), k, cfg.seed)
    work = store.with_name(f"{store.name}.work")
    parts = [_fit_fold(cfg, task, dm, folds, j, run_dir, work / f"fold{j}") for j in range(k)]
    ids = [i for p in parts for i in p[0]]
    logits = torch.cat([p[1] for p in parts])
    provenance = oof_provenance(logits_provenance(dm, Path(teacher["checkpoint"])), k, teacher["key"])
    trainer = parts[-1][3]
    if trainer.is_global_zero:
        _write_folds(store, ids, logits, provenance, dm, [p[2] for p in parts])
        for j in range(k):
            retire_work_dir(work / f"fold{j}", run_dir / f"fold{j}")
        shutil.rmtree(work, ignore_errors=True)
    wait_for_rank_zero(trainer, "fold logits published")
    return json.loads((store / "oof.json").read_text())


def _write_folds(store: Path, ids, logits, provenance, dm: GluePairDataModule, folds: list[dict]) -> None:
    with atomic_dir(store) as tmp:
        save_logits(tmp / "logits.pt", ids, logits, provenance)
        load_logits(tmp / "logits.pt", provenance, dm.ids("train"))  # every train row exactly once
        record = {
            "logits": str(store / "logits.pt"),
            "sha256": sha256_file(tmp / "logits.pt"),
            "teacher_checkpoint": provenance.teacher_checkpoint,
            "folds": folds,
        }
        write_json(tmp / "oof.json", record)
