"""Callbacks for reliable runs: the resume checkpoint, a stop on non-finite loss, RNG state in checkpoints;
and the checkpoint IO plugin that writes checkpoints atomically into their folder's manifest."""

from .checkpoint_io import AtomicCheckpointIO
from .finite_loss import FiniteLossCheck, NonFiniteLossError
from .last_checkpoint import LastCheckpoint
from .rng_state import RngStateCheckpoint

__all__ = [
    "AtomicCheckpointIO",
    "FiniteLossCheck",
    "LastCheckpoint",
    "NonFiniteLossError",
    "RngStateCheckpoint",
]
