"""Callbacks for reliable runs: a stop on non-finite loss, RNG state in checkpoints."""

from .finite_loss import FiniteLossCheck, NonFiniteLossError
from .rng_state import RngStateCheckpoint

__all__ = ["FiniteLossCheck", "NonFiniteLossError", "RngStateCheckpoint"]
