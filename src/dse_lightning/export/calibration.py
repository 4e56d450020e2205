"""Calibration sentences for the statically quantized backends (OpenVINO int8): a seeded sample of a task's
train sentences, named in the export's meta by where it came from."""

from __future__ import annotations

import random

from ..config import load_task
from ..data.sources import resolve_source

CALIBRATION_SIZE = 300  # sentences sampled for calibration (NNCF's default subset is 300 samples)


def sample_calibration(sentences: list[str], n: int = CALIBRATION_SIZE, seed: int = 0) -> list[str]:
    """A seeded sample of `n` of `sentences` (all of them when there are fewer)."""
    return random.Random(seed).sample(sentences, min(n, len(sentences)))


def calibration_sentences(
    task: str, data_dir: str | None = None, n: int = CALIBRATION_SIZE, seed: int = 0
) -> list[str]:
    """A seeded sample of `n` distinct sentences of the task's train split (both sides of its pairs)."""
    rows = resolve_source(load_task(task), data_dir).load("train")
    return sample_calibration(sorted(set(rows["sentence1"]) | set(rows["sentence2"])), n, seed)


def calibration_source(task: str, seed: int = 0) -> str:
    """How the export's meta names a `calibration_sentences(task, seed=seed)` sample."""
    return f"{task}/train, seed {seed}"
