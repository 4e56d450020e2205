"""The one artifact store: folders published atomically with a manifest, verified on load.

An artifact is a folder whose `manifest.json`, written last, holds its kind, a meta record and the sha256
of every other file. `publish` builds it in a temp folder beside its place and renames it in; `verify`
checks every listed file and raises `CorruptArtifactError` saying what to delete. Teachers, fold logits,
students, tokenisation caches, exports and embedding stores are all such folders.

`Store` keeps the artifacts of one kind under `<root>/<key>/`, the key hashing everything that changes
them: `get_or_build` returns the verified artifact or builds it under the key's file lock (a second job
waits, then reuses it), and `<root>/<key>.work/` holds the checkpoints of a build in progress, so a
killed build resumes. Lightning's checkpoint folders keep the same manifest, updated file by file.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_lightning.utilities import rank_zero_only

from .utils.io import CorruptArtifactError, atomic_dir, locked, sha256_file, write_json

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT = "dse-artifact/1"


@dataclass(frozen=True)
class Artifact:
    path: Path
    meta: dict
    reused: bool = False

    def copy_out(self, part: str, dest: Path) -> None:
        """Copy the artifact's folder `part` (an export) to `dest` atomically: the run dir's own copy.
        Rank 0 copies; under DDP the ranks share `dest`."""
        if rank_zero_only.rank == 0:
            with atomic_dir(dest) as tmp:
                shutil.copytree(self.path / part, tmp, dirs_exist_ok=True)


def _hashes(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p != root / MANIFEST)
    return {str(p.relative_to(root)): sha256_file(p) for p in files}


def write_manifest(folder: Path, kind: str, meta: dict) -> None:
    """The folder's manifest: every file's sha256 (so written last) and the meta record."""
    write_json(folder / MANIFEST, {"format": FORMAT, "kind": kind, "meta": meta, "files": _hashes(folder)})


def read_manifest(folder: Path, kind: str, remedy: str = "") -> dict:
    """The manifest of an artifact of `kind` (not its files: `verify` checks those)."""
    path = folder / MANIFEST
    if not folder.exists():  # a wrong path, not a damaged artifact: say so rather than "no manifest"
        raise FileNotFoundError(f"no such {kind}: {folder}")
    if not path.is_file():
        raise CorruptArtifactError(f"{folder}: not a complete {kind} (no {MANIFEST}); {remedy}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise CorruptArtifactError(f"{path}: unreadable ({err}); {remedy}") from err
    if manifest.get("format") != FORMAT or manifest.get("kind") != kind:
        found = (manifest.get("format"), manifest.get("kind"))
        raise CorruptArtifactError(f"{path}: {found} is not a {FORMAT} {kind}; {remedy}")
    return manifest


def manifest_kind(folder: Path) -> str | None:
    """The kind a folder's manifest declares, None without a readable one (`read_manifest` says why):
    to tell the kinds of artifact a command takes apart."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_file(path: Path, accepted: list[str], source: Path, remedy: str) -> None:
    """Raise CorruptArtifactError unless `path` hashes to one of `accepted` (listed in `source`)."""
    if not path.is_file():
        raise CorruptArtifactError(f"{path}: missing, though {source} lists it; {remedy}")
    if (actual := sha256_file(path)) not in accepted:
        raise CorruptArtifactError(
            f"{path}: sha256 {actual[:12]}... does not match {source} ({accepted[0][:12]}...): the file is "
            f"truncated or corrupted; {remedy}"
        )


def verify(folder: str | Path, kind: str, remedy: str, skip: Callable[[str], bool] | None = None) -> dict:
    """The artifact's meta record, after checking every file its manifest lists (but those `skip` names:
    files the caller will not read)."""
    folder = Path(folder)
    manifest = read_manifest(folder, kind, remedy)
    for rel, digest in manifest["files"].items():
        if skip is None or not skip(rel):
            check_file(folder / rel, [digest], folder / MANIFEST, remedy)
    return manifest["meta"]


def read_meta(folder: str | Path, kind: str) -> dict:
    """The meta record without hashing the files (the caller has just verified or written them)."""
    return read_manifest(Path(folder), kind, "")["meta"]


def publish(
    path: str | Path,
    kind: str,
    write: Callable[[Path], dict],
    barrier: Callable[[], None] | None = None,
    writer: bool | None = None,
) -> Artifact:
    """`write(tmp)` puts the files into tmp and returns the meta record; the manifest follows and tmp is
    renamed onto `path`. The writer is rank 0 (default): under DDP the other ranks wait at `barrier`."""
    path = Path(path)
    if rank_zero_only.rank == 0 if writer is None else writer:
        with atomic_dir(path) as tmp:
            write_manifest(tmp, kind, write(tmp))
    if barrier is not None:
        barrier()
    return Artifact(path, read_meta(path, kind))


# -- Lightning checkpoint folders: the manifest kept up to date file by file -------------------------------
CHECKPOINTS = "checkpoints"


def _living(folder: Path) -> dict:
    if (folder / MANIFEST).is_file():
        return read_manifest(folder, CHECKPOINTS, f"delete {folder}")
    return {"format": FORMAT, "kind": CHECKPOINTS, "meta": {}, "files": {}}


def record_file(path: Path, digest: str) -> None:
    """Enter the new sha256 of `path` before the file is renamed into place. The old one stays accepted
    (`previous`): a kill between the manifest's rename and the file's leaves a file matching one of them."""
    manifest = _living(path.parent)
    old = manifest["files"].get(path.name)
    manifest["files"][path.name] = digest
    manifest.setdefault("previous", {}).pop(path.name, None)
    if old is not None and path.is_file():
        manifest["previous"][path.name] = old
    write_json(path.parent / MANIFEST, manifest)


def forget_file(path: Path) -> None:
    manifest = _living(path.parent)
    manifest["files"].pop(path.name, None)
    manifest.get("previous", {}).pop(path.name, None)
    write_json(path.parent / MANIFEST, manifest)


def verify_file(path: str | Path, remedy: str) -> None:
    """Check one file of a checkpoint folder against the folder's manifest."""
    path = Path(path)
    manifest = _living(path.parent)
    accepted = [
        d for d in (manifest["files"].get(path.name), manifest.get("previous", {}).get(path.name)) if d
    ]
    if not accepted:
        raise CorruptArtifactError(
            f"{path}: not in {path.parent / MANIFEST}, so it cannot be trusted; {remedy}"
        )
    check_file(path, accepted, path.parent / MANIFEST, remedy)


def resume_checkpoint(work: Path, stage: str) -> str | None:
    """`work/checkpoints/last.ckpt` if a killed build left one (verified), else None."""
    last = work / CHECKPOINTS / "last.ckpt"
    if not last.is_file():
        return None
    verify_file(last, f"delete it (or all of {work}) to restart the {stage} from an earlier point")
    # mmap: only the counters are read here; Lightning loads the tensors when it restores.
    ckpt = torch.load(last, map_location="cpu", mmap=True, weights_only=False)
    log.info("%s: resuming from %s (epoch %d, step %d)", stage, last, ckpt["epoch"], ckpt["global_step"])
    return str(last)


def retire_work(work: Path, stage_dir: Path) -> None:
    """Move a work dir's checkpoints (with their manifest) into the run's stage dir; remove the work dir."""
    if (work / CHECKPOINTS).is_dir():
        target = stage_dir / CHECKPOINTS
        target.mkdir(parents=True, exist_ok=True)
        for item in (work / CHECKPOINTS).iterdir():
            shutil.move(str(item), str(target / item.name))
    shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Store:
    """Artifacts of one `kind` under `root/<key>/`, each with its resumable work dir `root/<key>.work/`.

    `remedy` (with `{path}`) is what a corrupt artifact's error tells the user to do."""

    root: Path
    kind: str
    remedy: str = "delete {path} to build it again"

    def path(self, key: str) -> Path:
        return self.root / key

    def work_dir(self, key: str) -> Path:
        return self.root / f"{key}.work"

    def load(self, key: str, rebuild_corrupt: bool = False) -> Artifact | None:
        """The verified artifact, None if absent; a corrupt one raises (or, rebuild_corrupt, warns: None)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return Artifact(path, verify(path, self.kind, self.remedy.format(path=path)), reused=True)
        except CorruptArtifactError as err:
            if not rebuild_corrupt:
                raise
            log.warning("%s %s is incomplete or corrupted (%s); rebuilding it", self.kind, path, err)
            return None

    def get_or_build(
        self,
        key: str,
        build: Callable[[], Artifact],
        rebuild: bool = False,
        rebuild_corrupt: bool = False,
        use: Callable[[Artifact], None] | None = None,
    ) -> Artifact:
        """The artifact `key`, or `build()`, under the key's lock: a job that waited reuses what the other
        built. `use(artifact)` runs under the lock too (nothing removes the artifact meanwhile).
        Under DDP only rank 0 takes the lock: the other ranks build beside it and wait at its barriers."""
        waiting = f"{self.kind} {key}: another job is building it; waiting to reuse it"
        with locked(self.path(key), waiting):
            artifact = (None if rebuild else self.load(key, rebuild_corrupt)) or build()
            if use is not None:
                use(artifact)
            return artifact

    def publish(self, key: str, write: Callable[[Path], dict], barrier=None, writer=None) -> Artifact:
        return publish(self.path(key), self.kind, write, barrier, writer)
