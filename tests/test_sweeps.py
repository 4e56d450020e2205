"""The experiment engine end to end: multirun + summary, DDP jobs in a sweep, Optuna, W&B offline, submitit.

Each test runs the real CLI in a subprocess on a tiny random BERT and a 48-row MRPC fixture.
"""

from __future__ import annotations

import csv
import json
import os
import struct
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from conftest import ROOT, run_cli
from dse_lightning.config import CONFIG_DIR
from dse_lightning.results import with_local_paths

pytestmark = pytest.mark.slow


def summary(sweep: Path) -> list[dict]:
    with open(sweep / "summary.csv") as f:
        return list(csv.DictReader(f))


def job_results(sweep: Path, job: int) -> dict:
    return with_local_paths(json.loads((sweep / str(job) / "results.json").read_text()), sweep / str(job))


def test_multirun_summarises_every_job_and_survives_a_failing_one(
    tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        tiny_backbone, mrpc_dir, tmp_path / "cache", "-m", "distill.alpha=0,0.5,2", f"hydra.sweep.dir={sweep}"
    )
    rows = summary(sweep)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    alphas = [next(o for o in r["overrides"].split() if o.startswith("distill.alpha")) for r in rows]
    assert alphas == ["distill.alpha=0", "distill.alpha=0.5", "distill.alpha=2"]
    assert (
        "distill.alpha=2: must be in [0, 1]" in json.loads((sweep / "2" / "failed.json").read_text())["error"]
    )
    assert float(rows[1]["student/acc"]) == job_results(sweep, 1)["student"]["metrics"]["acc"]
    # One teacher for the whole sweep: fitted by the first job, reused by the next.
    assert [job_results(sweep, j)["teacher"]["reused"] for j in (0, 1)] == [False, True]
    assert "| 2 | failed |" in (sweep / "summary.md").read_text()


def test_ddp_jobs_inside_a_multirun_get_one_dir_each(
    tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    cache = tmp_path / "cache"
    run_cli(
        tiny_backbone,
        mrpc_dir,
        cache,
        "-m",
        "trainer=ddp_cpu",
        "distill.alpha=0,1",
        f"hydra.sweep.dir={sweep}",
    )
    assert [r["status"] for r in summary(sweep)] == ["ok", "ok"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):  # rank 1 of each job wrote into that job's dir, not a sweep of its own
        assert (sweep / job / "train_ddp_process_1.log").is_file()
    assert not (ROOT / "logs" / "multiruns").exists() or not any(
        (p / "multirun.yaml").read_text().find(str(cache)) >= 0
        for p in (ROOT / "logs" / "multiruns").iterdir()
    )


def test_optuna_two_trials(tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        tiny_backbone, mrpc_dir, tmp_path / "cache", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {
        "distill.alpha",
        "student.module.optimizer.lr",
        "student.head.hidden_dim",
    }
    accs = [job_results(sweep, j)["student"]["metrics"]["acc"] for j in (0, 1)]
    assert best["best_value"] == pytest.approx(max(accs))  # the objective is the monitored dev metric
    assert [r["status"] for r in summary(sweep)] == ["ok", "ok"]


def test_submitit_local_launcher(tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        tiny_backbone, mrpc_dir, tmp_path / "cache", "-m", "hydra/launcher=submitit_local",
        "distill.alpha=0,1", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert [r["status"] for r in summary(sweep)] == ["ok", "ok"]
    assert (sweep / ".submitit").is_dir()


def wandb_records(path: Path) -> list:
    """Records of a .wandb transaction log: a 7-byte W&B header, then LevelDB-style 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, pos, block, out, part = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        part = data if kind in (1, 2) else part + data  # full / first, middle / last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(part)
            out.append(record)
    return out


def key(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_run_holds_the_logged_metrics(
    tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path
) -> None:
    run_dir = tmp_path / "run"
    os.environ.pop("WANDB_API_KEY", None)
    run_cli(tiny_backbone, mrpc_dir, tmp_path / "cache", "logger=wandb", f"hydra.run.dir={run_dir}")
    results = json.loads((run_dir / "results.json").read_text())
    (log_file,) = run_dir.glob("*/wandb/offline-run-*/run-*.wandb")  # offline, under the run dir
    records = wandb_records(log_file)
    history = [{key(i): i.value_json for i in r.history.item} for r in records if r.HasField("history")]
    logged = [float(h["val/acc"]) for h in history if "val/acc" in h]
    assert results["student"]["metrics"]["acc"] == pytest.approx(logged[-1])
    config_keys = {key(i) for r in records if r.HasField("config") for i in r.config.update}
    assert {"distill", "student", "task"} <= config_keys
    assert any(r.HasField("artifact") and r.artifact.type == "model" for r in records)
    # the same command again: teacher and student from the store, no trainer; still a W&B run
    again = tmp_path / "again"
    run_cli(tiny_backbone, mrpc_dir, tmp_path / "cache", "logger=wandb", f"hydra.run.dir={again}")
    (log_file,) = again.glob("*/wandb/offline-run-*/run-*.wandb")
    records = wandb_records(log_file)
    history = [{key(i): i.value_json for i in r.history.item} for r in records if r.HasField("history")]
    reported = [float(h["student/acc"]) for h in history if "student/acc" in h]
    assert reported == [pytest.approx(results["student"]["metrics"]["acc"])]
    assert any(r.HasField("artifact") and r.artifact.type == "model" for r in records)


def test_slurm_launcher_takes_gpus_and_nodes_from_the_trainer() -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (4, 4, 2)
    assert launcher._target_.endswith("SlurmLauncher")
