"""The one entry point: `python -m dse_lightning.train task=mrpc student=bilstm`.

`main()` is thin; `train(cfg)` returns the run's `RunResult` so tests, sweeps and Optuna can call it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from .config import CONFIG_PATH, check_hydra_sources, find_config, register_resolvers
from .data.tasks import TaskSpec
from .distill_stage import DistillStage, retire_student
from .loggers import report_reused, report_to_wandb
from .multitask_stage import MultiTaskStage, prepare, retire_multitask
from .options import check_options, teacher_source
from .pipeline.common import config_dict
from .pipeline.graph_teacher import graph_backend
from .pipeline.teacher import run_teacher
from .report import summary_table
from .results import MultiTaskResult, RunResult, StudentResult, TeacherResult
from .signals import exit_status_on_signal
from .sweep import in_multirun, job_overrides, job_scope, record_failure
from .utils.portable import library_versions, used_embedded_models

log = logging.getLogger(__name__)
STAGES = ("teacher", "distill", "all")
register_resolvers()


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def drop_recommended_transfer(cfg: DictConfig) -> None:
    """A student's recommended `augment` (conf/student/) is dropped where it cannot teach: at distill.alpha=0
    (the labels alone teach) or with a teacher that has no model to label new pairs (teacher=scores). The run
    says so, and its config says augment=none. Named on the command line, a transfer set is kept, and refused
    by its own check there."""
    name = cfg.augment.get("name", "none")
    if name == "none" or any(o.lstrip("+").startswith("augment=") for o in job_overrides()):
        return
    if float(cfg.distill.alpha) == 0:
        why = "distill.alpha=0: the labels alone teach"
    elif not teacher_source(cfg).predicts:
        why = f"teacher={cfg.teacher.name} has no model to label new pairs"
    else:
        return
    log.info("%s; the student's recommended augment=%s is not built", why, name)
    with open_dict(cfg):
        cfg.augment = OmegaConf.load(find_config("augment", "none"))


def train(cfg: DictConfig) -> RunResult | MultiTaskResult:
    """Run the configured stage(s); write results.json and return its content.

    The distill stage needs a teacher: it reuses the cached one whose provenance matches, or fits it.
    A stage killed part-way resumes from its work dir when the same command runs again (store.py).
    """
    start = time.time()
    if cfg.get("tasks"):
        return train_multitask(cfg, start)
    if cfg.stage not in STAGES:
        raise ValueError(f"stage={cfg.stage} is not one of {list(STAGES)}")
    task = TaskSpec.from_config(cfg.task)
    distilling = cfg.stage in ("distill", "all")
    if distilling:
        drop_recommended_transfer(cfg)
    check_options(cfg, task)
    if distilling:
        graph_backend(cfg)  # an unknown teacher.backend: refused here, not when the teacher labels
    if distilling:  # the loss and the target source refuse bad options before any teacher work
        loss = instantiate(cfg.distill, kind=task.kind)
        source = instantiate(cfg.augment, base=instantiate(cfg.targets))  # augment=none: targets as they are
        source.check(cfg)
    pl.seed_everything(cfg.teacher.seed, workers=True)  # = seed unless the teacher is shared across seeds
    run_dir = Path(cfg.paths.output_dir)
    teacher, data = run_teacher(cfg, task, run_dir)
    student = None
    if distilling:
        pl.seed_everything(cfg.seed, workers=True)  # the student's seed does not depend on teacher reuse
        student = DistillStage(cfg, task, teacher, data, loss, source, run_dir).run()
    result = run_result(cfg, task.name, data, teacher, student, start)
    if rank_zero_only.rank == 0:  # under DDP every rank runs this; one writes
        result.write(run_dir / "results.json")
        if student is not None:
            retire_student(cfg, task, student, run_dir)  # only now: results.json holds it
        log.info("results: %s\n%s", run_dir / "results.json", summary_table(result))
        report_reused(cfg, result, run_dir)
        report_to_wandb(result)
    return result


def run_result(
    cfg: DictConfig,
    task: str,
    data: dict,
    teacher: TeacherResult,
    student: StudentResult | None,
    start: float,
) -> RunResult:
    """The record of one task's run, with what produced it (commit, versions, overrides, embedded models)."""
    config = config_dict(cfg, drop=("hydra",))
    return RunResult(
        task=task,
        stage=cfg.stage,
        seed=cfg.seed,
        data=data,
        teacher=teacher,
        student=student,
        commit=git_commit(),
        torch_threads=torch.get_num_threads(),
        wall_time_s=round(time.time() - start, 1),
        overrides=job_overrides(),
        config=config,
        versions=library_versions(),
        models=used_embedded_models(config),
    )


def train_multitask(cfg: DictConfig, start: float) -> MultiTaskResult:
    """`tasks=`: every task's teacher, then one student with a head per task (multitask_stage.py)."""
    drop_recommended_transfer(cfg)
    run_dir = Path(cfg.paths.output_dir)
    parts = prepare(cfg, run_dir)
    pl.seed_everything(cfg.seed, workers=True)
    stage = MultiTaskStage(cfg, parts, run_dir)
    record, reused, export = stage.run()
    results = {
        name: run_result(
            part.cfg, name, part.rows, part.teacher,
            stage.task_result(name, record, reused, export), start,
        )
        for name, part in parts.items()
    }  # fmt: skip
    result = MultiTaskResult(results, record)
    if rank_zero_only.rank == 0:
        result.write(run_dir)
        retire_multitask(cfg, record["key"], run_dir)
        for name, one in results.items():
            log.info("%s:\n%s", name, summary_table(one))
        log.info(
            "results: %s (score %.4f: the mean of each task's monitored metric)",
            run_dir / "results.json",
            result.score,
        )
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the monitored dev metric (of the student when there is one): the sweep objective.

    In a multirun a failing job is logged and marked (failed.json) and the sweep goes on; Optuna
    records it as a failed trial. A single run fails loudly.
    """
    check_hydra_sources()
    try:
        with exit_status_on_signal(), job_scope():
            result = train(cfg)
    except Exception as err:
        if not in_multirun():
            raise
        record_failure(Path(cfg.paths.output_dir), err)
        return None
    if isinstance(result, MultiTaskResult):
        return result.score
    return result.model.metrics.get(cfg.task.monitor)


if __name__ == "__main__":
    main()
