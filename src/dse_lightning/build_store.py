"""`python -m dse_lightning.build_store export=E candidates=F store=S [trainer=ddp_cpu] [dtype=float16]`:
an embedding store built through Lightning's predict loop (scoring/build.py), for `python -m
dse_lightning.score --store S` and `open_index`."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from .config import CONFIG_PATH, check_hydra_sources, register_resolvers
from .embeddings.ann import Search
from .scoring.build import ShardWriter, build_store, plan_for
from .store import MANIFEST

log = logging.getLogger(__name__)
register_resolvers()


def run(cfg: DictConfig) -> Path:
    """The store's path (built on every rank's call; rank 0 publishes it)."""
    store = Path(cfg.store)
    if (store / MANIFEST).is_file() and not cfg.rebuild:
        log.info("%s exists; rebuild=true encodes the candidates again", store)
        return store
    plan = plan_for(cfg.export, cfg.candidates, store, cfg.backend, cfg.shard_size)
    trainer = instantiate(
        cfg.trainer, callbacks=[ShardWriter(plan)], logger=False, enable_checkpointing=False,
        default_root_dir=cfg.paths.output_dir,
    )  # fmt: skip
    index = Search(**cfg.index) if cfg.index.mode else None
    args = (cfg.export, cfg.candidates, store, cfg.dtype, cfg.backend, cfg.batch_size, index)
    build_store(trainer, plan, *args)
    return store


@hydra.main(config_path=CONFIG_PATH, config_name="build_store", version_base=None)
def main(cfg: DictConfig) -> None:
    check_hydra_sources()
    run(cfg)


if __name__ == "__main__":
    main()
