"""Callbacks for reliable runs: the resume checkpoint, a stop on non-finite loss, RNG state in checkpoints."""

from .finite_loss import FiniteLossCheck, NonFiniteLossError
from .last_checkpoint import LastCheckpoint
from .rng_state import RngStateCheckpoint

__all__ = ["FiniteLossCheck", "LastCheckpoint", "NonFiniteLossError", "RngStateCheckpoint"]
