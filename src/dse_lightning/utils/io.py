"""Atomic artifact writes, content hashes and their verification.

Every artifact (results, logits, checkpoints, caches, exports) is written to a temporary sibling and
renamed into place, so a killed or failing write never leaves a file that later loads as valid. A write
that fails for lack of space or permission raises `ArtifactWriteError` naming the target path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)
# errnos of a write that cannot succeed where it is: full disk or quota, read-only or forbidden place.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class ArtifactWriteError(OSError):
    """An artifact could not be written (disk full, read-only or forbidden folder); nothing was left."""

    def __init__(self, path: Path, err: OSError) -> None:
        super().__init__(
            err.errno,
            f"cannot write {path}: {err.strerror or err}. Nothing was written; free some disk space or "
            "point the option that sets this folder (paths.cache_dir, paths.log_dir, hydra.run.dir) at a "
            "writable one",
        )


class CorruptArtifactError(ValueError):
    """An artifact on disk that does not match its recorded checksum; the message says what to delete."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (keys sorted), used as a cache key."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except ArtifactWriteError:
        raise
    except OSError as err:
        if err.errno in WRITE_ERRNOS:
            raise ArtifactWriteError(path, err) from err
        raise


def checksum_path(path: str | Path) -> Path:
    """`<file>.sha256`: line 1 is the file's sha256; a line 2, its previous version's (see atomic_path)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _write_checksum(path: Path, digest: str) -> None:
    # Written before the rename, listing the old hash too: a kill between the two renames leaves a file
    # that matches one of the lines, never a valid file reported as corrupt.
    side = checksum_path(path)
    lines = [f"{digest}  {path.name}"]
    if path.is_file() and side.is_file():
        lines += side.read_text().splitlines()[:1]
    with atomic_path(side) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def atomic_path(path: str | Path, checksum: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    checksum: also write `<path>.sha256`, which `verify_checksum` checks before the file is trusted.
    """
    path = Path(path)
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _write_errors(path):
            yield tmp_path
            os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; artifacts are for the whole team
            if checksum:
                _write_checksum(path, sha256_file(tmp_path))
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _write_errors(path):
            yield tmp
            os.chmod(tmp, 0o755)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def locked(path: str | Path, waiting: str | None = None) -> Iterator[None]:
    """Hold the inter-process lock `.<name>.lock` beside `path` (released by the OS if the process dies);
    `waiting` is logged if another job holds it."""
    if rank_zero_only.rank != 0:
        # Under DDP rank 0 holds the lock for the whole job, and waits for the other ranks inside
        # fit(); were they to wait for the lock too, neither side would move.
        yield
        return
    lock_path = Path(path).with_name(f".{Path(path).name}.lock")
    with _write_errors(lock_path):
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("%s (lock %s)", waiting or "waiting for another job", lock_path)
            lock.acquire()
    try:
        yield
    finally:
        lock.release()


def write_json(path: str | Path, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def check_sha256(path: str | Path, expected: str | list[str], source: str, remedy: str) -> None:
    """Raise CorruptArtifactError unless `path` hashes to `expected` (one hash or several accepted)."""
    path = Path(path)
    accepted = [expected] if isinstance(expected, str) else expected
    if not path.is_file():
        raise CorruptArtifactError(f"{path}: missing, though {source} lists it; {remedy}")
    if (actual := sha256_file(path)) not in accepted:
        raise CorruptArtifactError(
            f"{path}: sha256 {actual[:12]}... does not match {source} ({accepted[0][:12]}...): the file is "
            f"truncated or corrupted; {remedy}"
        )


def verify_checksum(path: str | Path, remedy: str) -> None:
    """Check `path` against its `.sha256` file (written by atomic_path(checksum=True))."""
    side = checksum_path(path)
    if not side.is_file():
        raise CorruptArtifactError(f"{path}: no checksum file {side.name}, so it cannot be trusted; {remedy}")
    accepted = [line.split()[0] for line in side.read_text().splitlines() if line.strip()]
    check_sha256(path, accepted, side.name, remedy)


def tree_sha256(root: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `root` (a cache entry or export folder)."""
    root = Path(root)
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def tree_problems(root: str | Path, expected: dict[str, str]) -> list[str]:
    """What differs between the files under `root` and the recorded `expected` hashes (empty: all good)."""
    root = Path(root)
    problems = []
    for rel, digest in expected.items():
        if not (root / rel).is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(root / rel) != digest:
            problems.append(f"{rel} does not match its sha256")
    return problems


def read_manifest(folder: str | Path, name: str, fmt: str, what: str) -> dict:
    """The JSON manifest `folder/name` of an artifact folder, checked to be of format `fmt`.

    `what` names the artifact in the error, e.g. "a student export".
    """
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not {what} (no {name})")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != fmt:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {fmt!r}")
    return manifest
