"""Run a profile's unfinished cells through the engine: one Hydra multirun per sweep (profile.py).

A cell is done when its dir holds a readable results.json (the engine writes it last and atomically); a
failing job leaves `failed.json` instead and its sweep goes on (the engine's multirun handling). A cell
killed part-way resumes from the engine's work dirs in the cache, so `make reproduce-table` picks up
where it left. Each cell records the overrides it was started with (cell.json): a finished cell that a
changed profile would now run differently is refused, not silently counted. Several runners (`workers`,
or another terminal) share the sweeps through a lock each.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from ..results import RunResult
from ..utils.io import write_json
from .profile import Cell, Profile, Sweep, sweeps

log = logging.getLogger(__name__)


def result(cell_dir: Path) -> RunResult | None:
    try:
        return RunResult.read(cell_dir / "results.json")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_done(cell_dir: Path) -> bool:
    return result(cell_dir) is not None


class StaleCellError(ValueError):
    """A finished cell that was run with other overrides than its profile now gives it."""


def _asked(cell_dir: Path) -> list[str] | None:
    """The overrides a cell was started with (cell.json, written before it runs); None for older cells."""
    try:
        return json.loads((cell_dir / "cell.json").read_text())["overrides"]
    except (OSError, ValueError, KeyError):
        return None


def check_fresh(cells: list[Cell], out: Path) -> None:
    """Refuse to count a finished cell whose recorded overrides differ from the profile's: reusing it
    would put a result of another recipe under this one's name (a changed profile, the same --out)."""
    stale = []
    for cell in cells:
        asked = _asked(cell.dir(out))
        if asked is not None and is_done(cell.dir(out)) and asked != list(cell.overrides):
            changed = sorted(set(asked) ^ set(cell.overrides))
            stale.append(f"{cell.task}/{cell.name} (differs in {changed})")
    if stale:
        raise StaleCellError(
            f"{out}: {len(stale)} finished cell(s) ran with other overrides than the profile now gives: "
            f"{'; '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}. Delete those cell folders to rerun "
            "them, or pass another --out"
        )


def _mark(cells: tuple[Cell, ...], out: Path) -> None:
    for cell in cells:
        cell.dir(out).mkdir(parents=True, exist_ok=True)
        write_json(cell.dir(out) / "cell.json", {"overrides": list(cell.overrides)})


def _record(out: Path, cells: list[Cell], keep_checkpoints: bool) -> None:
    """Wall times of finished cells not yet in timings.json (a recorded time is kept: cells copied in
    come with theirs); their training checkpoints pruned (hundreds of MB a cell; the table needs
    results.json and the exported student)."""
    with FileLock(out / ".timings.lock"):
        path = out / "timings.json"
        timings = json.loads(path.read_text()) if path.is_file() else {}
        for cell in cells:
            name = f"{cell.task}/{cell.name}"
            if name in timings:
                continue
            done = cell.dir(out) / "results.json"
            finished = datetime.datetime.fromtimestamp(done.stat().st_mtime).isoformat(timespec="seconds")
            timings[name] = {"wall_s": result(cell.dir(out)).wall_time_s, "finished": finished}
            if not keep_checkpoints:
                for ckpt_dir in cell.dir(out).glob("*/checkpoints"):
                    shutil.rmtree(ckpt_dir)
        write_json(path, timings)


def run_sweep(sweep: Sweep, out: Path, env: dict) -> int:
    """The sweep as one `python -m dse_lightning.train -m ...` (a multi-task sweep: one run, whose task
    records are copied into the cells), its output in `<out>/logs/<sweep>.log`."""
    cmd = [sys.executable, "-m", "dse_lightning.train", *sweep.overrides(out)]
    (out / "logs").mkdir(parents=True, exist_ok=True)
    with open(out / "logs" / f"{sweep.id}.log", "a") as logfile:
        code = subprocess.run(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if sweep.multitask:
        for cell in sweep.cells:
            if (record := result(sweep.run_dir(out) / cell.task)) is not None:
                record.write(cell.dir(out) / "results.json")  # its paths made relative to the cell's dir
    return code


def _runner(todo: list[Sweep], profile: Profile, out: Path, env: dict, bar: tqdm) -> None:
    """Take every sweep no other runner holds, in order."""
    for sweep in todo:
        try:
            with FileLock(out / "cells" / f".{sweep.id}.lock", timeout=0):
                pending = [c for c in sweep.cells if not is_done(c.dir(out))]
                if pending:
                    _mark(tuple(pending), out)
                    code = run_sweep(Sweep(sweep.name, tuple(pending)), out, env)
                    finished = [c for c in pending if is_done(c.dir(out))]
                    _record(out, finished, profile.keep_checkpoints)
                    bar.update(len(finished))
                    bar.write(f"{sweep.id}: {len(finished)} of {len(pending)} cells done (exit {code})")
        except Timeout:
            bar.write(f"{sweep.id}: another runner has it")


def run_cells(profile: Profile, out: Path, workers: int = 1) -> list[str]:
    """Run every unfinished cell; the names of those still unfinished afterwards (the others ran)."""
    check_fresh(profile.cells(), out)
    todo = [c for c in profile.cells() if not is_done(c.dir(out))]
    groups = sweeps(todo)
    log.info(
        "%s: %d cells to run in %d sweeps, %d runner(s) -> %s",
        profile.name,
        len(todo),
        len(groups),
        workers,
        out,
    )
    (out / "cells").mkdir(parents=True, exist_ok=True)
    # Each runner's cells get cores / workers threads (measured here, 2 cores, MRPC dse cells: one runner
    # with two threads, 118 s a cell; two single-thread runners, 105 s a cell).
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // max(1, workers)))}
    with tqdm(total=len(todo), desc=f"reproduce-table ({profile.name})", unit="cell") as bar:
        threads = [
            threading.Thread(target=_runner, args=(groups, profile, out, env, bar)) for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # A run killed after a cell ended but before its sweep did left that cell's time unrecorded.
    _record(out, [c for c in profile.cells() if is_done(c.dir(out))], profile.keep_checkpoints)
    return [f"{c.task}/{c.name}" for c in todo if not is_done(c.dir(out))]
