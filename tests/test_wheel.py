"""The wheel as a user gets it: built from a copy of the sources, it carries the config tree and the console
scripts; installed into a fresh virtual environment (no network: the dependencies are this environment's),
it trains from an empty folder, and trains and evaluates a task of the user's own from a folder outside
the package."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from dse_lightning.config import CONFIG_DIR

pytestmark = pytest.mark.slow

# A short training of both stages on a tiny teacher: what `debug=smoke` leaves to the command line.
TINY_RUN = (
    "debug=smoke", "student=bilstm", "logger=none", "trainer.enable_progress_bar=false",
    "teacher.batch_size=8", "student.batch_size=8", "data.eval_batch_size=8",
)  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel` of a copy of the sources (a build/ left in the checkout could carry stale files)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run([*cmd, "-w", str(out), str(tree)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (built,) = out.glob("dse_lightning-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory) -> Path:
    """A fresh environment holding the wheel, then this environment's site-packages as a plain path: a
    bare path in a .pth file adds the folder without running its .pth files, so the checkout's editable
    install stays out."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
    proc = subprocess.run([*install, str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # only now: with them visible, pip would see this environment's editable dse-lightning as installed
    (purelib,) = (root / "lib").glob("python3*/site-packages")
    (purelib / "project_env.pth").write_text("".join(f"{d}\n" for d in site.getsitepackages()))
    return root


def run(venv: Path, cwd: Path, *cmd: str, **env: str) -> subprocess.CompletedProcess:
    """A console script of the venv, as a user runs it: no PYTHONPATH, no DSE_* settings, offline."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DSE_", "PYTHON", "VIRTUAL_ENV"))}
    clean.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    clean["PATH"] = f"{venv / 'bin'}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / cmd[0]), *cmd[1:]],
        cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_wheel_carries_every_config_and_the_console_scripts(wheel: Path, venv: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {n.removeprefix("dse_lightning/conf/") for n in names if n.startswith("dse_lightning/conf/")}
    tree = {str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob("*.yaml")}
    assert "hydra/launcher/slurm.yaml" in tree and packaged == tree  # nested groups included
    # the venv imports the wheel's copy, whose configs are its own
    code = "import dse_lightning.config as c; print(c.__file__); print(c.CONFIG_DIR)"
    module, conf = ok(run(venv, venv, "python", "-c", code)).split()
    assert Path(module).is_relative_to(venv) and Path(conf).is_relative_to(venv)
    assert (Path(conf) / "train.yaml").is_file()
    # every console script is installed and names a callable main
    code = (
        "from importlib.metadata import distribution\n"
        "for e in distribution('dse-lightning').entry_points: print(e.name, callable(e.load()))"
    )
    scripts = dict(line.split() for line in ok(run(venv, venv, "python", "-c", code)).splitlines())
    assert {"dse-train", "dse-score", "dse-build-store", "dse-evaluate", "dse-export-onnx"} <= set(scripts)
    assert set(scripts.values()) == {"True"} and all((venv / "bin" / name).is_file() for name in scripts)


def test_smoke_training_from_an_empty_folder(venv: Path, tiny_backbone: Path, mrpc_dir: Path, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    ok(run(venv, work, "dse-train", "task=mrpc", *TINY_RUN, f"teacher.backbone={tiny_backbone}",
           f"data.dir={mrpc_dir}"))  # fmt: skip
    (results,) = work.glob("logs/mrpc/all/runs/*/results.json")  # the package's paths/ and hydra/ configs
    record = json.loads(results.read_text())
    assert record["task"] == "mrpc" and record["data"] == {"train": 48, "dev": 16}
    assert record["student"]["name"] == "bilstm" and set(record["student"]["metrics"]) == {"acc", "f1"}
    assert (work / ".cache" / "teachers" / "mrpc").is_dir()


def test_a_task_of_the_users_own_from_a_folder_outside_the_package(
    venv: Path, tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "my_conf"
    (mine / "task").mkdir(parents=True)
    text = (CONFIG_DIR / "task" / "mrpc.yaml").read_text()
    (mine / "task" / "paraphrase.yaml").write_text(
        text.replace("name: mrpc", "name: paraphrase").replace("glue_dir: MRPC", "glue_dir: PARA")
    )
    shutil.copytree(mrpc_dir / "MRPC", mrpc_dir / "PARA")  # the new task's data, in its own folder
    work = tmp_path / "work"
    work.mkdir()
    run_dir = tmp_path / "run"  # outside the working directory: the record's paths are relative to it
    args = (*TINY_RUN, f"teacher.backbone={tiny_backbone}", f"data.dir={mrpc_dir}")
    args = (*args, f"hydra.run.dir={run_dir}")
    ok(run(venv, work, "dse-train", "--config-dir", str(mine), "task=paraphrase", *args))
    record = json.loads((run_dir / "results.json").read_text())
    assert record["task"] == "paraphrase" and record["data"] == {"train": 48, "dev": 16}
    # code outside the Hydra entry point (export.evaluate's --task) finds it through DSE_CONFIG_DIR
    export = str(run_dir / record["student"]["export"])
    cmd = ("dse-evaluate", export, "--task", "paraphrase", "--data-dir", str(mrpc_dir))
    metrics = json.loads(ok(run(venv, work, *cmd, DSE_CONFIG_DIR=str(mine))).splitlines()[-1])
    assert metrics["task"] == "paraphrase"
    assert metrics["acc"] == pytest.approx(record["student"]["metrics"]["acc"], abs=1e-6)
    # a user file under a packaged name would be ignored by Hydra: refused before any work
    (mine / "task" / "mrpc.yaml").write_text(text.replace("monitor: acc", "monitor: f1"))
    hidden = run(venv, work, "dse-train", "--config-dir", str(mine), "task=paraphrase", *args)
    assert hidden.returncode != 0 and "['task/mrpc.yaml'] have the names of the package's" in hidden.stderr
