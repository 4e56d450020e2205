"""Global RNG states in every checkpoint, restored on resume.

Lightning restores weights, optimizers, schedulers, loop counters and (stateful) data loaders, but not
the random generators; without them a resumed run draws other dropout masks than an uninterrupted one.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

KEY = "dse_rng_states"


def collect_rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RngStateCheckpoint(pl.Callback):
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = collect_rng_states()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if KEY in checkpoint:
            restore_rng_states(checkpoint[KEY])
