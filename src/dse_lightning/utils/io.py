"""Atomic writes, content hashes and inter-process locks: the primitives under `store.py`.

Every artifact (results, logits, checkpoints, caches, exports) is written to a temporary sibling and
renamed into place, so a killed or failing write never leaves a file that later loads as valid. A write
that fails for lack of space or permission raises `ArtifactWriteError` naming the target path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

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


def sentences_checksum(sentences: Iterable[str]) -> str:
    """sha256 of the sentences in row order, one per line: computable while streaming a corpus."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update(sentence.encode() + b"\n")
    return digest.hexdigest()


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except ArtifactWriteError:
        raise
    except Exception as err:
        if (code := write_errno(err, path)) is not None:
            raise ArtifactWriteError(path, OSError(code, os.strerror(code))) from err
        raise


def write_errno(err: Exception, path: Path) -> int | None:
    """The errno of a write that cannot succeed where it is (WRITE_ERRNOS), also where a library wraps it
    in its own error: shutil.copytree (a list of failures), safetensors ("os error 28"), and torch's zip
    writer ("unexpected pos", no errno at all: a full disk is then checked for)."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno if err.errno in WRITE_ERRNOS else None
    text = str(err)
    for code in WRITE_ERRNOS:
        if f"[Errno {code}]" in text or f"os error {code})" in text:
            return code
    if isinstance(err, RuntimeError) and "unexpected pos" in text and _full(path):
        return errno.ENOSPC
    return None


def _full(path: Path) -> bool:
    """Less than a MiB left where `path` is written (the failed write's partial file still holds its
    space while this is asked)."""
    folder = next(p for p in (path, *path.parents) if p.exists())
    return shutil.disk_usage(folder).free < 1 << 20


@contextlib.contextmanager
def atomic_path(path: str | Path, before_rename: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    before_rename(tmp) runs after the block, before the rename (store.record_file enters the file's hash).
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
            if before_rename is not None:
                before_rename(tmp_path)
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
            _share(tmp)
            _install_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after a swap: the old version


def _share(folder: Path) -> None:
    """Folders 0755 and files 0644 (artifacts are for the whole team), whatever wrote them: mkdtemp makes
    0700, safetensors writes 0600."""
    os.chmod(folder, 0o755)
    for root, dirs, files in os.walk(folder):
        for names, mode in ((dirs, 0o755), (files, 0o644)):
            for name in names:
                if not os.path.islink(target := os.path.join(root, name)):  # never a link's target
                    os.chmod(target, mode)


def _install_dir(tmp: Path, path: Path) -> None:
    """Put folder `tmp` at `path` so that `path` holds a complete version at every instant: swapped in one
    step where the OS can (the old version is left in `tmp`), else renamed aside first and put back if
    the new one cannot go in (a kill between those two renames leaves it at `.<name>.<pid>.old`)."""
    if not path.exists():
        os.replace(tmp, path)
    elif not _exchange(tmp, path):
        aside = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(aside, path)
            raise
        os.replace(aside, tmp)  # removed with tmp


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the OS cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # an old kernel, or a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def locked(path: str | Path, waiting: str | None = None) -> Iterator[None]:
    """Hold the inter-process lock `.<name>.lock` beside `path` (released by the OS if the process dies);
    `waiting` is logged if another job holds it."""
    from pytorch_lightning.utilities import rank_zero_only  # here: the file primitives import in a blink

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
