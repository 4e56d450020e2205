"""Work dirs that let a killed stage resume where it stopped.

A stage that trains (teacher, fold teacher, student) checkpoints into a work dir keyed by everything that
determines its result, `<cache_dir>/teachers/<task>/<key>.work/` or `<cache_dir>/students/<task>/<key>.work/`,
not into the run dir (a rerun gets a new timestamped run dir). Running the same command again finds the
work dir's `last.ckpt` (callbacks.LastCheckpoint: every N optimizer steps and after each epoch), checks
its sha256 and continues from it. When the stage's result is published, the
checkpoints move into the run dir and the work dir is removed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from ..utils.io import verify_checksum

log = logging.getLogger(__name__)


def resume_checkpoint(work_dir: Path, stage: str) -> str | None:
    """`work_dir/checkpoints/last.ckpt` when a previous run of this stage left one (verified), else None."""
    last = work_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    verify_checksum(last, f"delete it (or all of {work_dir}) to restart the {stage} from an earlier point")
    # mmap: only the counters are read here; Lightning loads the tensors when it restores.
    ckpt = torch.load(last, map_location="cpu", mmap=True, weights_only=False)
    log.info("%s: resuming from %s (epoch %d, step %d)", stage, last, ckpt["epoch"], ckpt["global_step"])
    return str(last)


def verified_best(best: str | None, work_dir: Path, stage: str) -> str | None:
    """The best checkpoint's path after checking its sha256 (it may predate a kill)."""
    if best:
        verify_checksum(best, f"delete {work_dir} to fit the {stage} again")
    return best


def retire_work_dir(work_dir: Path, stage_dir: Path) -> None:
    """Move the work dir's checkpoints into the run's stage dir and remove the work dir."""
    ckpts = work_dir / "checkpoints"
    if ckpts.is_dir():
        target = stage_dir / "checkpoints"
        target.mkdir(parents=True, exist_ok=True)
        for item in ckpts.iterdir():
            shutil.move(str(item), str(target / item.name))
    shutil.rmtree(work_dir, ignore_errors=True)
