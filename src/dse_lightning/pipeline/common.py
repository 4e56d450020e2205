"""Builders shared by the pipeline stages: datamodule, trainer (or a predict-only one), callbacks, loggers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint

from ..callbacks import AtomicCheckpointIO, RngStateCheckpoint
from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..store import resume_checkpoint, verify_file

log = logging.getLogger(__name__)


def build_datamodule(
    cfg: DictConfig,
    task: TaskSpec,
    view: str,
    tokenizer: str,
    batch_size: int,
    seed: int | None = None,
    **data,
) -> GluePairDataModule:
    """`cfg.data` for one stage; `seed` (default: the run's) orders the train rows, `data` adds the
    DataModule's other arguments (targets, train_rows). Lightning calls its hooks: under DDP, rank 0
    tokenises while the others wait."""
    # The task goes in after instantiation: its metric configs are not for Hydra to build.
    make_dm = instantiate(cfg.data, _partial_=True, _convert_="object")
    return make_dm(
        task=task,
        tokenizer=tokenizer,
        view=view,
        batch_size=batch_size,
        seed=cfg.seed if seed is None else seed,
        **data,
    )


def build_callbacks(cfg: DictConfig, task: TaskSpec, ckpt_dir: Path) -> list[pl.Callback]:
    """`cfg.callbacks`, `model_checkpoint` (the best by the task's monitored metric) first. Every
    ModelCheckpoint (LastCheckpoint too) writes into `ckpt_dir` without version suffixes, so a resumed
    run finds and overwrites the same `last.ckpt`."""
    if cfg.callbacks.get("model_checkpoint") is None:
        raise ValueError("callbacks.model_checkpoint is required: it keeps the best checkpoint")
    callbacks = []
    for name, node in sorted(cfg.callbacks.items(), key=lambda kv: kv[0] != "model_checkpoint"):
        if node is None:
            continue
        extra: dict = {}
        if issubclass(get_class(node._target_), ModelCheckpoint):
            extra = {"dirpath": str(ckpt_dir), "enable_version_counter": False}
        if name == "model_checkpoint":
            extra |= {"monitor": f"val/{task.monitor}", "mode": task.monitor_mode}
        callbacks.append(instantiate(node, **extra))
    return callbacks


def build_trainer(
    cfg: DictConfig, task: TaskSpec, stage_dir: Path, max_epochs: int, ckpt_dir: Path | None = None
) -> tuple[pl.Trainer, pl.Callback]:
    """A Trainer for one stage, logging under `stage_dir` and checkpointing into `ckpt_dir` (default
    `stage_dir/checkpoints`); returns it with its `model_checkpoint` callback.

    Checkpoints are written atomically, entered in their folder's manifest, and carry the RNG states, so a
    resumed run continues exactly where the checkpoint was taken.
    """
    callbacks = build_callbacks(cfg, task, ckpt_dir or stage_dir / "checkpoints")
    loggers = [instantiate(c, save_dir=str(stage_dir)) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(
        cfg.trainer,
        max_epochs=max_epochs,
        default_root_dir=str(stage_dir),
        callbacks=[*callbacks, RngStateCheckpoint()],
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )
    return trainer, callbacks[0]


def build_predictor(cfg: DictConfig, stage_dir: Path) -> pl.Trainer:
    """A Trainer that only predicts, from the run's `trainer=` (accelerator, devices, strategy, precision:
    under DDP every process takes part): no callbacks, checkpoints, logger or progress bar."""
    return instantiate(
        cfg.trainer,
        default_root_dir=str(stage_dir),
        callbacks=[],
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )


def val_metrics(outputs: list[dict], stage: str = "val") -> dict[str, float]:
    """trainer.validate's [{'val/acc': t, 'val/loss': l}] -> {'acc': 0.81}: the keys results.json uses
    (stage="test": trainer.test's)."""
    metrics = {k: v for d in outputs for k, v in d.items()}
    prefix = f"{stage}/"
    return {
        k[len(prefix) :]: float(v) for k, v in metrics.items() if k.startswith(prefix) and "loss" not in k
    }


def evaluate_test(trainer: pl.Trainer, module, dm) -> dict[str, float]:
    """The test split's metrics, evaluated once with the model chosen on dev (the module as it is: after
    fit_and_validate it holds the best checkpoint); {} for a task without a test split."""
    if not dm.task.test_splits:
        return {}
    return val_metrics(trainer.test(module, datamodule=dm), "test")


def fit_and_validate(trainer: pl.Trainer, ckpt_cb, module, dm, work: Path, stage: str) -> dict[str, float]:
    """Fit (resuming from `work` after a kill), then the dev metrics of the best checkpoint."""
    trainer.fit(module, datamodule=dm, ckpt_path=resume_checkpoint(work, stage), weights_only=False)
    best = ckpt_cb.best_model_path or None
    if best:  # it may predate a kill
        verify_file(best, f"delete {work} to start the {stage} again")
    log.info("%s: best checkpoint %s (%s=%s)", stage, best, ckpt_cb.monitor, ckpt_cb.best_model_score)
    # Our own checkpoint: its hparams hold the TaskSpec and optimizer partials, not plain tensors.
    return val_metrics(trainer.validate(module, datamodule=dm, ckpt_path=best, weights_only=False))


def config_dict(node: DictConfig, drop: tuple[str, ...] = ()) -> dict:
    """Resolved plain copy of a config node, without the `drop` keys (e.g. Hydra's own node in tests)."""
    node = node.copy()
    with open_dict(node):
        for key in drop:
            node.pop(key, None)
    return OmegaConf.to_container(node, resolve=True)


def card_data(dm: GluePairDataModule) -> dict[str, dict[str, str]]:
    """What a model card says of the data: split -> {"source", "sha256"}."""
    return {s: {"source": dm.source.describe(s), "sha256": dm.fingerprint(s)} for s in dm.task.splits}


def without_added_defaults(node: dict, added: dict) -> dict:
    """`node` without the options added after students were cached, where they hold their default (which
    trains or fits as before): cached students and teachers keep their keys."""
    return {k: v for k, v in node.items() if not (k in added and v == added[k])}
