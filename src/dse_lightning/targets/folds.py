"""Out-of-fold targets (`targets=folds targets.folds=k`).

A teacher's logits on its own training rows are over-confident (it has fit them). Here k teachers are fit
on k-1 folds each and every train row takes its logits from the teacher that did not see it. The result is
a logits artifact like the single teacher's, in the store under `<cache_dir>/teacher_folds/<task>/<teacher
key>-oof<k>/`; its `teacher_checkpoint` provenance names the fold set (`oof<k>-<key>`), since the fold
teachers' weights are not kept. Each fold fits in `<that key>.work/fold<j>/` and resumes after a kill.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from ..logits import load_logits, read_logits, save_logits
from ..pipeline.distributed import wait_for_rank_zero
from ..pipeline.inference import SplitRows, predict_logits
from ..pipeline.teacher import fit_or_load, teacher_data
from ..store import Artifact, Store, retire_work
from .base import StudentTargets, TargetContext, TargetSource

log = logging.getLogger(__name__)


def fold_of_rows(n: int, k: int, seed: int) -> list[int]:
    """Fold index of each of n rows: a seeded permutation dealt round-robin (sizes differ by <= 1)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    folds = [0] * n
    for position, row in enumerate(order):
        folds[row] = position % k
    return folds


class OutOfFold(TargetSource):
    name = "folds"
    needs_teacher_model = True

    def __init__(self, folds: int = 3) -> None:
        if folds < 2:
            raise ValueError(
                f"targets.folds must be >= 2 (each row's teacher leaves its fold out), got {folds}"
            )
        self.folds = folds

    def describe(self) -> dict:
        return {"source": self.name, "folds": self.folds}

    def check(self, cfg) -> None:
        if cfg.teacher.checkpoint:
            raise ValueError("targets=folds fits fold teachers, so it cannot start from teacher.checkpoint")

    def build(self, ctx: TargetContext) -> StudentTargets:
        store = Store(
            Path(ctx.cfg.paths.cache_dir).resolve() / "teacher_folds" / ctx.task.name, "teacher folds"
        )
        key = f"{ctx.teacher.key}-oof{self.folds}"
        artifact = store.get_or_build(key, lambda: self._fit(ctx, store, key))
        if artifact.reused:
            log.info("teacher folds: reusing %s", artifact.path)
        expected = ctx.data.provenance(f"oof{self.folds}-{ctx.teacher.key}")
        logits = read_logits(artifact.path / "logits.pt", expected)
        return StudentTargets(logits=logits.map(ctx.task.kind.student_targets))

    def _fit_fold(self, ctx: TargetContext, folds: list[int], j: int, work: Path):
        cfg, task, stage_dir = ctx.cfg, ctx.task, ctx.run_dir / "teacher_folds" / f"fold{j}"
        keep = [i for i, f in enumerate(folds) if f != j]
        held = [i for i, f in enumerate(folds) if f == j]
        pair_data = lambda rows: teacher_data(cfg, task, train_rows=rows)  # noqa: E731
        trainer, module, metrics = fit_or_load(cfg, task, pair_data(keep), stage_dir, work / f"fold{j}")
        held_out = predict_logits(trainer, module, SplitRows(pair_data(held)))
        log.info("teacher fold %d/%d: fit on %d rows, dev %s", j + 1, self.folds, len(keep), metrics)
        return held_out.ids, held_out.values, metrics, trainer

    def _fit(self, ctx: TargetContext, store: Store, key: str) -> Artifact:
        folds = fold_of_rows(ctx.rows["train"], self.folds, ctx.cfg.seed)
        work = store.work_dir(key)
        parts = [self._fit_fold(ctx, folds, j, work) for j in range(self.folds)]
        ids, logits = [i for p in parts for i in p[0]], torch.cat([p[1] for p in parts])
        provenance = ctx.data.provenance(f"oof{self.folds}-{ctx.teacher.key}")

        if len(ids) != ctx.rows["train"]:  # save_logits refuses repeated ids: so every row exactly once
            raise RuntimeError(f"the {self.folds} folds predicted {len(ids)} rows of {ctx.rows['train']}")

        def write(tmp: Path) -> dict:
            save_logits(tmp / "logits.pt", ids, logits, provenance)
            load_logits(tmp / "logits.pt", provenance, ids)  # the round trip, before publishing
            return {"teacher_key": ctx.teacher.key, "folds": [p[2] for p in parts]}

        trainer = parts[-1][3]
        artifact = store.publish(
            key, write, barrier=lambda: wait_for_rank_zero(trainer, "fold logits published")
        )
        if trainer.is_global_zero:
            for j in range(self.folds):
                retire_work(work / f"fold{j}", ctx.run_dir / "teacher_folds" / f"fold{j}")
            shutil.rmtree(work, ignore_errors=True)
        return artifact
