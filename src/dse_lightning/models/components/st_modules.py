"""A sentence-transformers module for the DSE pooling, so a `dse` export is a SentenceTransformer folder
that loads without dse_lightning installed.

sentence-transformers' convention for a custom module: its code lies in the model folder and modules.json
names it by file (`dse_pooling.DSEPooling`); `SentenceTransformer(path, trust_remote_code=True)` imports
it from there (transformers' dynamic modules). `ship_code` writes this file as `dse_pooling.py` and the
pooling it uses as `pooling.py` (torch only), beside it as here, so the copy and the library are the same
code byte for byte.
Poolings sentence-transformers has itself (cls; mean and max over all tokens) use its own `Pooling`
(`native_pooling`) and need no remote code.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
from sentence_transformers.base.modules import Module

from .pooling import Pooling  # the only import of the package: pooling.py is shipped beside this file

SHIPPED = "dse_pooling"  # the module file in the export: dse_pooling.py


class DSEPooling(Module):
    """all_layer_embeddings + attention_mask -> sentence_embedding, with `Pooling` (top-k means, ...)."""

    config_keys = ["mode", "k", "exclude_cls", "embedding_dimension", "embeddings"]

    def __init__(
        self,
        mode: str = "top_k_mean",
        k: int = 4,
        exclude_cls: bool = True,
        embedding_dimension: int | None = None,
        embeddings: bool = False,  # old exports have no such key: their pooling never reached them
    ) -> None:
        super().__init__()
        self.mode, self.k, self.exclude_cls, self.embeddings = mode, k, exclude_cls, embeddings
        self.embedding_dimension = embedding_dimension  # k x hidden for top_k_mean; None in old exports
        self.pooling = Pooling(mode=mode, k=k, exclude_cls=exclude_cls, embeddings=embeddings)

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        hidden = features["all_layer_embeddings"]  # (layers + 1) x (B, L, H)
        features["sentence_embedding"] = self.pooling(hidden, features["attention_mask"])
        return features

    def get_embedding_dimension(self) -> int | None:
        """The width of `sentence_embedding`, which sentence-transformers reports (and its card states)."""
        return self.embedding_dimension

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)  # no weights: pooling is parameter-free


def native_pooling(pooling: Pooling, hidden_size: int):
    """sentence-transformers' own `Pooling` when it computes exactly what `pooling` does, else None."""
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    # its mean and max pool every attended token, [CLS] included
    if pooling.mode == "cls" or (pooling.mode in ("mean", "max") and not pooling.exclude_cls):
        return STPooling(hidden_size, pooling_mode=pooling.mode)
    return None


def ship_code(folder: Path) -> None:
    """Put DSEPooling's code into a saved SentenceTransformer folder and point modules.json at it."""
    (folder / f"{SHIPPED}.py").write_text(Path(__file__).read_text())
    (folder / "pooling.py").write_text(Path(inspect.getsourcefile(Pooling)).read_text())
    modules_path = folder / "modules.json"
    modules = json.loads(modules_path.read_text())
    for entry in modules:
        if entry["type"] == f"{DSEPooling.__module__}.{DSEPooling.__qualname__}":
            entry["type"] = f"{SHIPPED}.{DSEPooling.__qualname__}"
    modules_path.write_text(json.dumps(modules, indent=2))
