"""What the student learns from besides gold labels: what a target source (targets/) returns and the
sentence-view DataModule receives."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
from torch import nn

from ..logits import KeyedLogits


@dataclass
class StudentTargets:
    """What the student learns from besides gold labels."""

    logits: KeyedLogits | None = None  # (N, K) in the student's form (binary: z1 - z0), by example id
    online: nn.Module | None = None  # a frozen TeacherModule: a pair-encoded batch -> logits (B, C)
    # Train rows without a gold label (id, sentence1, sentence2), and what identifies them (the cache key).
    extra_rows: datasets.Dataset | None = None
    extra_key: str | None = None
