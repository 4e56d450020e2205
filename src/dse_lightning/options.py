"""Options that cannot do what they say, refused in one place before any work (`train()` calls it first).

Each of these used to run: `teacher.max_epochs=0` published an untrained teacher that later runs reused,
`data.max_length=2` trained on `[CLS] [SEP]`, `distill.alpha=1.5` and `distill=kl task=stsb` failed only
after the teacher stage. The losses, the data module and the target sources keep their own checks for
library callers; this is where a command line is refused, naming every bad option at once. A loss's refusal
of a task is written once, in its class (`DistillLoss.refusal`): asked here, raised by its constructor.
"""

from __future__ import annotations

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from .data.tasks import TaskSpec

# [CLS] a [SEP] b [SEP]: three special tokens and at least a few word pieces of each sentence.
MIN_PAIR_LENGTH = 8


class OptionError(ValueError):
    """A configuration that cannot do what it says; the message names each option and why."""


def _at_least(cfg: DictConfig, key: str, low: int) -> list[str]:
    value = OmegaConf.select(cfg, key)
    return [] if isinstance(value, int) and value >= low else [f"{key}={value}: must be an integer >= {low}"]


def _distill_errors(cfg: DictConfig, task: TaskSpec) -> list[str]:
    errors = _at_least(cfg, "student.max_epochs", 1) + _at_least(cfg, "student.batch_size", 1)
    alpha = cfg.distill.get("alpha", 0.5)
    if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        errors.append(f"distill.alpha={alpha}: must be in [0, 1] (0: labels only, 1: teacher only)")
    # The loss class says which tasks it cannot distil (KL: regression, no class logits); `auto` refuses none.
    refusal = getattr(get_object(cfg.distill._target_), "refusal", None)
    if refusal is not None and (why := refusal(task.kind, task.name)):
        errors.append(why)
    return errors


def option_errors(cfg: DictConfig, task: TaskSpec) -> list[str]:
    """Every option of `cfg` that cannot work, as `key=value: why`; [] when all can."""
    errors = _at_least(cfg, "data.max_length", MIN_PAIR_LENGTH) + _at_least(cfg, "data.eval_batch_size", 1)
    if not cfg.teacher.get("checkpoint"):  # a teacher is fitted (or reused: its key has these)
        errors += _at_least(cfg, "teacher.max_epochs", 1) + _at_least(cfg, "teacher.batch_size", 1)
    share = cfg.data.get("max_truncated_fraction", 0.0)
    if not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        errors.append(f"data.max_truncated_fraction={share}: must be in [0, 1]")
    if cfg.stage in ("distill", "all"):
        errors += _distill_errors(cfg, task)
    return errors


def check_options(cfg: DictConfig, task: TaskSpec) -> None:
    errors = option_errors(cfg, task)
    if errors:
        raise OptionError("bad option(s), nothing was run:\n  " + "\n  ".join(errors))
