"""Hydra multiruns: keep a sweep going past a failed job, and summarise every job at the end.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml); at the end of a multirun it writes
`summary.csv` and `summary.md` into the sweep dir, one row per job: its overrides, status and dev
metrics. `python -m dse_lightning.sweep SWEEP_DIR` rebuilds them (e.g. after SLURM jobs finish).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch.distributed as dist
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, read_write

from .report import markdown_table, write_csv
from .results import RunResult
from .utils.io import atomic_path, write_json

log = logging.getLogger(__name__)
FAILED = "failed.json"


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_overrides() -> list[str]:
    """This job's command-line overrides (sweep values included); [] outside Hydra."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def record_failure(run_dir: Path, err: BaseException) -> None:
    """Mark a sweep job failed (its dir gets failed.json) so the sweep can go on and report it."""
    log.error("job failed: %s", err, exc_info=err)
    trace = "".join(traceback.format_exception(err))
    error = f"{type(err).__name__}: {err}"
    write_json(run_dir / FAILED, {"error": error, "overrides": job_overrides(), "traceback": trace})


# Set by Lightning's script launcher in rank 0; left behind, they make the next job's Trainer
# believe its DDP processes already exist.
_DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@contextlib.contextmanager
def job_scope() -> Iterator[None]:
    """Run one multirun job the way a single run runs, so DDP works inside a sweep.

    Lightning's DDP launcher starts ranks 1..N-1 by re-running `sys.argv` with `hydra.run.dir` set
    to `HydraConfig.run.dir`. In a multirun that would re-run the whole sweep into a new dir, so
    during the job the command line is this job's overrides and the run dir is the job's dir.
    Afterwards the process group is torn down, so the next job launches its own ranks.
    """
    if not in_multirun():
        yield
        return
    hydra_cfg, argv = HydraConfig.get(), sys.argv
    env = {k: os.environ.get(k) for k in _DDP_ENV}
    sys.argv = [argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = argv
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _overrides(job: Path) -> list[str]:
    saved = job / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(saved.read_text()) or []) if saved.is_file() else []


def _job_row(job: Path) -> dict:
    row: dict = {"job": job.name, "overrides": " ".join(_overrides(job))}
    if (job / "results.json").is_file() and "multitask" in (
        record := json.loads((job / "results.json").read_text())
    ):
        row |= {"status": "ok", "task": "+".join(record["tasks"]), "seed": record.get("seed")}
        row["student/score"] = record["multitask"]["score"]  # the mean of each task's monitored metric
        for task, section in record["tasks"].items():
            row |= {f"student/{task}/{k}": v for k, v in section["student"]["metrics"].items()}
    elif (job / "results.json").is_file():
        r = RunResult.read(job / "results.json")
        row |= {"status": "ok", "task": r.task, "seed": r.seed}
        row |= {f"teacher/{k}": v for k, v in r.teacher.metrics.items()}
        if r.student:
            row |= {f"student/{k}": v for k, v in r.student.metrics.items()}
            if "mean" in r.student.relative_degradation:
                row["student/rel_degradation"] = r.student.relative_degradation["mean"]
    elif (job / FAILED).is_file():
        row |= {"status": "failed", "error": json.loads((job / FAILED).read_text())["error"]}
    else:
        row["status"] = "incomplete"  # killed, or still running
    return row


def collect(sweep_dir: Path) -> list[dict]:
    """One row per job dir (a dir holding .hydra, results.json or failed.json), in job order."""
    markers = (".hydra", "results.json", FAILED)
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and any((p / m).exists() for m in markers)]
    return [_job_row(j) for j in sorted(jobs, key=lambda p: (len(p.name), p.name))]  # 2 before 10


def _columns(rows: list[dict]) -> list[str]:
    first = ["job", "status", "task", "seed", "overrides"]
    rest = sorted({k for r in rows for k in r} - set(first) - {"error"})
    return first + rest + (["error"] if any("error" in r for r in rows) else [])


def write_summary(sweep_dir: Path) -> Path | None:
    rows = collect(sweep_dir)
    if not rows:
        return None
    cols = _columns(rows)
    write_csv(sweep_dir / "summary.csv", cols, rows)
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text(markdown_table(cols, rows) + "\n")
    failed = sum(r["status"] != "ok" for r in rows)
    log.info("sweep summary: %s (%d jobs, %d not ok)", sweep_dir / "summary.md", len(rows), failed)
    return sweep_dir / "summary.md"


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        path = write_summary(Path(config.hydra.sweep.dir))
        if path is not None:
            print(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description="Rebuild a sweep dir's summary.csv / summary.md")
    parser.add_argument("sweep_dir", type=Path)
    path = write_summary(parser.parse_args().sweep_dir)
    print(path.read_text() if path else "no job dirs found")


if __name__ == "__main__":
    main()
