"""Calibration inputs for the statically quantized backends (OpenVINO int8): a seeded sample of a task's
train sentences (a cross-encoder's: train pairs), named in the export's meta by where it came from."""

from __future__ import annotations

import random

from ..config import load_task
from ..data.sources import resolve_source

CALIBRATION_SIZE = 300  # sentences sampled for calibration (NNCF's default subset is 300 samples)


def sample_calibration(inputs: list, n: int = CALIBRATION_SIZE, seed: int = 0) -> list:
    """A seeded sample of `n` of `inputs` (all of them when there are fewer)."""
    return random.Random(seed).sample(inputs, min(n, len(inputs)))


def sample_rows(rows, pairs: bool = False, n: int = CALIBRATION_SIZE, seed: int = 0) -> list:
    """A seeded sample of `n` distinct sentences of train `rows` (both sides of its pairs), or with `pairs`
    of `n` distinct (sentence1, sentence2) pairs: what a cross-encoder reads."""
    if pairs:
        return sample_calibration(
            sorted(set(zip(rows["sentence1"], rows["sentence2"], strict=True))), n, seed
        )
    return sample_calibration(sorted(set(rows["sentence1"]) | set(rows["sentence2"])), n, seed)


def calibration_inputs(
    task: str, data_dir: str | None = None, n: int = CALIBRATION_SIZE, seed: int = 0, pairs: bool = False
) -> list:
    """`sample_rows` of the task's train split."""
    return sample_rows(resolve_source(load_task(task), data_dir).load("train"), pairs, n, seed)


def calibration_source(task: str, seed: int = 0, pairs: bool = False) -> str:
    """How the export's meta names a `calibration_inputs(task, seed=seed, pairs=pairs)` sample."""
    return f"{task}/train{' pairs' if pairs else ''}, seed {seed}"
