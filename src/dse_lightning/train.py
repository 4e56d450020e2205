"""The one entry point: `python -m dse_lightning.train task=mrpc student=bilstm`.

`main()` is thin; `train(cfg)` returns (results, objects) so tests, sweeps and Optuna can call it.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from .data.tasks import TaskSpec
from .loggers import report_to_wandb
from .pipeline.common import config_dict
from .pipeline.distill import check_target_options, retire_student, run_distill
from .pipeline.teacher import run_teacher
from .report import summary_table
from .resolvers import register_resolvers
from .sweep import in_multirun, job_overrides, job_scope, record_failure
from .utils.io import write_json

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


def train(cfg: DictConfig) -> tuple[dict, dict]:
    """Run the configured stage(s); write and return results.json's content.

    The distill stage needs a teacher: it reuses the cached one whose provenance matches, or fits it.
    A stage killed part-way resumes from its work dir when the same command runs again (pipeline/resume.py).
    """
    if cfg.stage not in STAGES:
        raise ValueError(f"stage={cfg.stage} is not one of {list(STAGES)}")
    if cfg.stage in ("distill", "all"):
        check_target_options(cfg)  # before any teacher work
    pl.seed_everything(cfg.teacher.seed, workers=True)  # = seed unless the teacher is shared across seeds
    task = TaskSpec.from_config(cfg.task)
    run_dir = Path(cfg.paths.output_dir)
    teacher = run_teacher(cfg, task, run_dir)
    results = {
        "task": task.name,
        "stage": cfg.stage,
        "seed": cfg.seed,
        "data": teacher.pop("data"),
        "teacher": teacher,
    }
    if cfg.stage in ("distill", "all"):
        pl.seed_everything(cfg.seed, workers=True)  # the student's seed does not depend on teacher reuse
        results["student"] = run_distill(cfg, task, teacher, run_dir)
    results |= {
        "commit": git_commit(),
        "torch_threads": torch.get_num_threads(),  # CPU float sums, hence a few predictions, depend on it
        "overrides": job_overrides(),
        "config": config_dict(cfg, drop=("hydra",)),
    }
    if rank_zero_only.rank == 0:  # under DDP every rank runs this; one writes
        write_json(run_dir / "results.json", results)
        if "student" in results:
            retire_student(cfg, task, results["student"], run_dir)  # only now: results.json holds it
        log.info("results: %s\n%s", run_dir / "results.json", summary_table(results))
        report_to_wandb(results)
    return results, {"task": task}


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the monitored dev metric (of the student when there is one): the sweep objective.

    In a multirun a failing job is logged and marked (failed.json) and the sweep goes on; Optuna
    records it as a failed trial. A single run fails loudly.
    """
    try:
        with job_scope():
            results, _ = train(cfg)
    except Exception as err:
        if not in_multirun():
            raise
        record_failure(Path(cfg.paths.output_dir), err)
        return None
    model = results.get("student") or results["teacher"]
    return model["metrics"].get(cfg.task.monitor)


if __name__ == "__main__":
    main()
