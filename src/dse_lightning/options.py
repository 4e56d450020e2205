"""Options that cannot do what they say, refused in one place before any work (`train()` calls it first).

Each of these used to run: `teacher.max_epochs=0` published an untrained teacher that later runs reused,
`data.max_length=2` trained on `[CLS] [SEP]`, `distill.alpha=1.5` and `distill=kl task=stsb` failed only
after the teacher stage. The losses, the data module and the target sources keep their own checks for
library callers; this is where a command line is refused, naming every bad option at once. A loss's refusal
of a task is written once, in its class (`DistillLoss.refusal`): asked here, raised by its constructor; so
are a teacher source's (`option_errors`, pipeline/teacher.py).
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from .data.tasks import TaskSpec

# [CLS] a [SEP] b [SEP]: three special tokens and at least a few word pieces of each sentence.
MIN_PAIR_LENGTH = 8


class OptionError(ValueError):
    """A configuration that cannot do what it says; the message names each option and why."""


# Where a teacher's logits come from: its entry's `source` (conf/teacher/cross_encoder.yaml, scores.yaml). An
# entry without one fits `teacher.module` (minilm, bert_*: their store keys predate the seam).
MODULE_TEACHER = "dse_lightning.pipeline.teacher.ModuleTeacher"


def teacher_source(cfg: DictConfig):
    """The run's teacher source (a `pipeline.teacher.TeacherSource`), built from its entry."""
    node = cfg.teacher.get("source")
    return instantiate(node) if node is not None else get_object(MODULE_TEACHER)()


def at_least(cfg: DictConfig, key: str, low: int) -> list[str]:
    value = OmegaConf.select(cfg, key)
    return [] if isinstance(value, int) and value >= low else [f"{key}={value}: must be an integer >= {low}"]


def layer_errors(depth: int, num_layers, keep_layers, where: str) -> list[str]:
    """student.encoder's num_layers / keep_layers against the backbone's depth: asked here before any
    work, and by load_backbone for library callers."""
    errors = []
    if num_layers is not None and keep_layers is not None:
        errors.append("student.encoder: give num_layers (the first k) or keep_layers (which), not both")
    if num_layers is not None and not (isinstance(num_layers, int) and 1 <= num_layers <= depth):
        errors.append(
            f"student.encoder.num_layers={num_layers}: {where} has {depth} layers; keep 1 to {depth}"
        )
    layers = list(keep_layers) if keep_layers is not None else None
    if layers is not None and (
        not layers or layers != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < depth
    ):
        errors.append(
            f"student.encoder.keep_layers={layers}: expected increasing layer numbers in 0..{depth - 1} "
            f"({where} has {depth} layers)"
        )
    return errors


def _encoder_errors(cfg: DictConfig) -> list[str]:
    """A transformer student's layer choice against its backbone's config (a JSON file: cheap)."""
    enc = cfg.student.get("encoder")
    if enc is None or not str(enc.get("_target_", "")).endswith("TransformerEncoder"):
        return []
    if enc.get("num_layers") is None and enc.get("keep_layers") is None:
        return []
    from transformers import AutoConfig

    backbone = enc.backbone
    if isinstance(backbone, DictConfig):  # a config dict (tests' tiny random models)
        config = AutoConfig.for_model(**OmegaConf.to_container(backbone, resolve=True))
    else:
        config = AutoConfig.from_pretrained(backbone)
    return layer_errors(config.num_hidden_layers, enc.num_layers, enc.keep_layers, f"backbone {backbone}")


def _intermediate_errors(cfg: DictConfig) -> list[str]:
    """An intermediate-layer term needs a transformer student and a source folder (checked before work;
    the layer mapping against both models' depths when the student is built)."""
    node = cfg.get("intermediate")
    if not node:
        return []
    errors = []
    if not str(cfg.student.get("encoder", {}).get("_target_", "")).endswith("TransformerEncoder"):
        errors.append(
            f"intermediate: hidden states to match need a transformer student (student=dse), not "
            f"student={cfg.student.name}"
        )
    if not Path(str(node.source)).is_dir():
        errors.append(f"intermediate.source={node.source}: no such folder (a student export or a backbone)")
    return errors


def _distill_errors(cfg: DictConfig, task: TaskSpec) -> list[str]:
    errors = at_least(cfg, "student.max_epochs", 1) + at_least(cfg, "student.batch_size", 1)
    errors += _encoder_errors(cfg) + _intermediate_errors(cfg)
    alpha = cfg.distill.get("alpha", 0.5)
    if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        errors.append(f"distill.alpha={alpha}: must be in [0, 1] (0: labels only, 1: teacher only)")
    # The loss class says which tasks it cannot distil (KL: regression, no class logits); `auto` refuses none.
    refusal = getattr(get_object(cfg.distill._target_), "refusal", None)
    if refusal is not None and (why := refusal(task.kind, task.name)):
        errors.append(why)
    return errors


def _teacher_errors(cfg: DictConfig, task: TaskSpec) -> list[str]:
    source = teacher_source(cfg)
    errors = source.option_errors(cfg, task)
    if cfg.stage not in ("distill", "all") or source.predicts:
        return errors
    # A target source or transfer set that runs the teacher's model on pairs it has no logits for.
    for group in ("targets", "augment"):
        cls = get_object(cfg[group]._target_)
        if getattr(cls, "needs_teacher_model", False):
            errors.append(
                f"{group}={cfg[group].get('name') or cls.name}: runs the teacher's model (on new pairs, "
                f"folds or members), and teacher={cfg.teacher.name} has none, only the logits of its files: "
                "use targets=logits augment=none, or a teacher with a model (e.g. teacher=cross_encoder)"
            )
    return errors


def option_errors(cfg: DictConfig, task: TaskSpec) -> list[str]:
    """Every option of `cfg` that cannot work, as `key=value: why`; [] when all can."""
    errors = at_least(cfg, "data.max_length", MIN_PAIR_LENGTH) + at_least(cfg, "data.eval_batch_size", 1)
    for key in ("data.limit_train", "data.limit_eval"):  # null: every row; 0 is not "no limit"
        if OmegaConf.select(cfg, key) is not None:
            errors += at_least(cfg, key, 1)
    errors += _teacher_errors(cfg, task)
    share = cfg.data.get("max_truncated_fraction", 0.0)
    if not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        errors.append(f"data.max_truncated_fraction={share}: must be in [0, 1]")
    if cfg.stage in ("distill", "all"):
        errors += _distill_errors(cfg, task)
    return errors


def refuse(errors: list[str]) -> None:
    """Raise one OptionError naming every bad option, or nothing when there is none."""
    if errors:
        raise OptionError("bad option(s), nothing was run:\n  " + "\n  ".join(errors))


def check_options(cfg: DictConfig, task: TaskSpec) -> None:
    refuse(option_errors(cfg, task))
