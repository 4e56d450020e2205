"""Run a profile's cells through the engine, skipping those that finished.

A cell is done when its run dir holds a readable results.json (the engine writes it last and atomically).
A cell killed part-way leaves no results.json; running it again resumes its teacher / student from the
engine's work dirs in the cache (pipeline/resume.py), so `make reproduce-table` picks up where it left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from ..utils.io import write_json
from .profile import Cell, Profile

log = logging.getLogger(__name__)


def is_done(cell_dir: Path) -> bool:
    try:
        return "teacher" in json.loads((cell_dir / "results.json").read_text())
    except (OSError, ValueError):
        return False


def command(cell: Cell, cell_dir: Path) -> list[str]:
    return [sys.executable, "-m", "dse_lightning.train", *cell.overrides, f"hydra.run.dir={cell_dir}"]


def _prune(cell_dir: Path) -> None:
    """Checkpoints are hundreds of MB per cell; the table needs results.json and the exported student."""
    for ckpt_dir in cell_dir.glob("*/checkpoints"):
        shutil.rmtree(ckpt_dir)


def run_cell(cell: Cell, out: Path, keep_checkpoints: bool) -> float:
    """Run one cell (its output in <cell dir>/run.log); its wall time in seconds. Raises on failure."""
    cell_dir = cell.dir(out)  # run_cells made it, to hold the cell's lock
    start = time.time()
    with open(cell_dir / "run.log", "a") as logfile:
        proc = subprocess.run(command(cell, cell_dir), stdout=logfile, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not is_done(cell_dir):
        raise RuntimeError(
            f"cell {cell.task}/{cell.name} failed (exit {proc.returncode}); see {cell_dir / 'run.log'}"
        )
    if not keep_checkpoints:
        _prune(cell_dir)
    return time.time() - start


def _record_time(out: Path, cell: Cell, seconds: float) -> None:
    path = out / "timings.json"
    with FileLock(out / ".timings.lock"):
        _update_timings(path, cell, seconds)


def _update_timings(path: Path, cell: Cell, seconds: float) -> None:
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[f"{cell.task}/{cell.name}"] = {
        "wall_s": round(seconds, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(path, timings)


def run_cells(profile: Profile, out: Path) -> list[str]:
    """Run every unfinished cell in order; the names of those that failed (the others still run)."""
    cells = profile.cells()
    todo = [c for c in cells if not is_done(c.dir(out))]
    log.info(
        "%s: %d cells, %d done, %d to run -> %s",
        profile.name,
        len(cells),
        len(cells) - len(todo),
        len(todo),
        out,
    )
    failed = []
    bar = tqdm(todo, desc=f"reproduce-table ({profile.name})", unit="cell")
    for cell in bar:
        bar.set_postfix_str(f"{cell.task}/{cell.name}")
        cell.dir(out).mkdir(parents=True, exist_ok=True)
        # Several runners may share the cells (e.g. two single-thread workers on two cores): each takes
        # the cells no other runner holds.
        try:
            with FileLock(cell.dir(out) / ".lock", timeout=0):
                if is_done(cell.dir(out)):
                    continue
                seconds = run_cell(cell, out, profile.keep_checkpoints)
                _record_time(out, cell, seconds)
        except Timeout:
            bar.write(f"{cell.task}/{cell.name}: another runner has it")
            continue
        except RuntimeError as err:
            log.error("%s", err)
            failed.append(f"{cell.task}/{cell.name}")
            continue
        bar.write(f"{cell.task}/{cell.name}: done in {seconds / 60:.1f} min")
    return failed


def run_cells_parallel(profile: Profile, out: Path, workers: int, profile_arg: str) -> list[str]:
    """`workers` runners over the same cells (the cell locks keep them apart), each cell with
    cores / workers threads. Measured here (2 cores, MRPC dse cells): one runner with two threads, 118 s a
    cell; two single-thread runners, 210 s for two cells at once (105 s a cell)."""
    if workers <= 1:
        return run_cells(profile, out)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    cmd = [sys.executable, "-m", "dse_lightning.table", profile_arg, "--stage", "cells", "--workers", "1"]
    others = [subprocess.Popen([*cmd, "--out", str(out)], env=env) for _ in range(workers - 1)]
    os.environ["OMP_NUM_THREADS"] = env["OMP_NUM_THREADS"]  # this process's cells inherit it
    failed = run_cells(profile, out)
    codes = [proc.wait() for proc in others]
    return sorted(set(failed + [f"(runner exited {c})" for c in codes if c]))
