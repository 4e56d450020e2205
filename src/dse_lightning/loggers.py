"""Weights & Biases: the logger factory (online with a key, offline otherwise) and the end-of-run report.

Both stages of a run (teacher, student) log into one W&B run; sweep jobs are grouped by their sweep.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import WandbLogger

from .results import RunResult
from .sweep import in_multirun

log = logging.getLogger(__name__)


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """$WANDB_MODE if set, else online when an API key is configured, else offline (no network needed)."""
    return os.environ.get("WANDB_MODE") or ("online" if _has_api_key() else "offline")


def wandb_logger(save_dir: str, project: str, name: str | None = None, **kwargs) -> WandbLogger:
    """A WandbLogger whose offline files lie under the run dir; a sweep's jobs share a group."""
    mode = wandb_mode()
    group = kwargs.pop("group", None)
    if group is None and in_multirun():
        group = Path(HydraConfig.get().sweep.dir).name
    log.info("wandb: %s mode, project %s, group %s", mode, project, group)
    return WandbLogger(
        save_dir=save_dir, project=project, name=name, group=group, offline=mode != "online", **kwargs
    )


def _results_table(result: RunResult):
    import wandb

    models = [(role, m) for role, m in (("teacher", result.teacher), ("student", result.student)) if m]
    metrics = sorted({k for _, m in models for k in m.metrics})
    rows = [[role, m.name, m.params, *(m.metrics.get(k) for k in metrics)] for role, m in models]
    return wandb.Table(columns=["role", "name", "params", *metrics], data=rows)


def report_reused(cfg: DictConfig, result: RunResult, run_dir: Path) -> None:
    """A run that trained nothing (its teacher and student both from the store) has had no trainer to
    start its loggers: each one configured gets the dev metrics here (W&B then its table and artifact,
    report_to_wandb), so that a sweep's dashboard does not silently miss its cached cells."""
    if not result.teacher.reused or (result.student is not None and not result.student.reused):
        return
    models = {"teacher": result.teacher, "student": result.student}
    metrics = {f"{role}/{k}": v for role, m in models.items() if m for k, v in m.metrics.items()}
    stage_dir = run_dir / ("student" if result.student else "teacher")
    for node in (cfg.get("logger") or {}).values():
        logger = instantiate(node, save_dir=str(stage_dir))
        logger.log_hyperparams({"reused": True})
        logger.log_metrics(metrics, step=0)
        logger.save()
        log.info("reported the reused run's dev metrics to %s", type(logger).__name__)


def report_to_wandb(result: RunResult) -> None:
    """Config, results table and the exported student (as a model artifact); then end the W&B run."""
    wandb = sys.modules.get("wandb")  # only a run that used the W&B logger has imported it
    if wandb is None or wandb.run is None:
        return
    run = wandb.run
    run.config.update(result.config, allow_val_change=True)
    run.log({"results": _results_table(result)})
    student = result.student
    if student:
        run.summary.update({f"student/{k}": v for k, v in student.metrics.items()})
        metadata = result.to_json()["student"]
        artifact = wandb.Artifact(f"student-{result.task}-{run.id}", type="model", metadata=metadata)
        artifact.add_dir(student.export)
        run.log_artifact(artifact)
    run.finish()
