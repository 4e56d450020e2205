"""Builders shared by the pipeline stages: datamodule, trainer, callbacks, loggers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, task: TaskSpec, view: str, tokenizer: str, batch_size: int):
    # The task goes in after instantiation: its metric configs are not for Hydra to build.
    make_dm = instantiate(cfg.data, _partial_=True, _convert_="object")
    dm: GluePairDataModule = make_dm(
        task=task, tokenizer=tokenizer, view=view, batch_size=batch_size, seed=cfg.seed
    )
    dm.prepare_data()
    dm.setup()
    return dm


def build_trainer(
    cfg: DictConfig, task: TaskSpec, stage_dir: Path, max_epochs: int
) -> tuple[pl.Trainer, pl.Callback]:
    """A Trainer for one stage, writing under `stage_dir`; returns it with its checkpoint callback."""
    ckpt = instantiate(
        cfg.callbacks.model_checkpoint,
        dirpath=str(stage_dir / "checkpoints"),
        monitor=f"val/{task.monitor}",
        mode=task.monitor_mode,
    )
    others = [instantiate(c) for k, c in cfg.callbacks.items() if k != "model_checkpoint" and c is not None]
    loggers = [instantiate(c, save_dir=str(stage_dir)) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(
        cfg.trainer,
        max_epochs=max_epochs,
        default_root_dir=str(stage_dir),
        callbacks=[ckpt, *others],
        logger=loggers or False,
    )
    return trainer, ckpt


def strip_prefix(metrics: dict, prefix: str) -> dict[str, float]:
    """{'val/acc': t} -> {'acc': 0.81}: the plain keys results.json uses."""
    return {
        k[len(prefix) :]: float(v) for k, v in metrics.items() if k.startswith(prefix) and "loss" not in k
    }


def config_dict(node: DictConfig, drop: tuple[str, ...] = ()) -> dict:
    """Resolved plain copy of a config node, without the `drop` keys (e.g. Hydra's own node in tests)."""
    node = node.copy()
    with open_dict(node):
        for key in drop:
            node.pop(key, None)
    return OmegaConf.to_container(node, resolve=True)
