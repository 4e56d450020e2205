"""Atomic writes: a failing or killed write leaves nothing that loads as valid (store.py: test_store.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from dse_lightning.utils.io import ArtifactWriteError, atomic_dir, atomic_path, write_json


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_failing_write_is_a_clean_error_and_leaves_nothing(tmp_path: Path, monkeypatch, code: int) -> None:
    def failing_write(self, *args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "write_text", failing_write)
    with pytest.raises(
        ArtifactWriteError, match=rf"cannot write {tmp_path / 'results.json'}: .*Nothing was written"
    ):
        write_json(tmp_path / "results.json", {"a": 1})
    assert leftovers(tmp_path) == []  # no results.json, no temp file
    with pytest.raises(ArtifactWriteError, match=rf"cannot write {tmp_path / 'store'}"):
        with atomic_dir(tmp_path / "store") as tmp:
            (tmp / "teacher.json").write_text("{}")
    assert leftovers(tmp_path) == []


def test_disk_full_during_torch_save(tmp_path: Path, monkeypatch) -> None:
    from dse_lightning.logits import Provenance, save_logits

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    prov = Provenance("mrpc", "train", "c", "t", 128, "d")
    with pytest.raises(ArtifactWriteError, match=r"logits\.pt: No space left on device"):
        save_logits(tmp_path / "logits.pt", ["a"], torch.zeros(1, 2), prov)
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; covered by EROFS above")
def test_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(
            ArtifactWriteError, match=rf"cannot write {ro / 'results.json'}: Permission denied"
        ):
            write_json(ro / "results.json", {})
        assert leftovers(ro) == []
    finally:
        ro.chmod(0o755)


def test_error_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = write_json(tmp_path / "r.json", {"v": 1})
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert target.read_text().strip().endswith("}") and leftovers(tmp_path) == ["r.json"]


# A child process replaces folder `d` (file v: "old") with a new version (v: "new") and is SIGKILLed just
# before the k-th step of the replacement (a rename, a swap or a removal).
KILL_AT_STEP = """
import os, shutil, signal, sys
from pathlib import Path
import dse_lightning.utils.io as io
k, calls = int(sys.argv[2]), [0]
def step(fn):
    def run(*a, **kw):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **kw)
    return run
io.os.replace, io.shutil.rmtree, io._exchange = step(os.replace), step(shutil.rmtree), step(io._exchange)
with io.atomic_dir(sys.argv[1]) as tmp:
    (tmp / "v").write_text("new")
    (tmp / "w").write_text("new")
"""


@pytest.mark.parametrize("exchange", [True, False])
def test_replacing_a_folder_leaves_a_complete_version_at_every_instant(
    tmp_path: Path, exchange: bool
) -> None:
    import subprocess
    import sys

    from conftest import ROOT

    script = (
        KILL_AT_STEP
        if exchange
        else KILL_AT_STEP.replace("with io.", "io._exchange = lambda a, b: False\nwith io.")
    )
    versions = set()
    for k in range(1, 5):
        folder = tmp_path / f"k{k}" / "d"
        folder.mkdir(parents=True)
        (folder / "v").write_text("old")
        (folder / "w").write_text("old")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run([sys.executable, "-c", script, str(folder), str(k)], env=env, check=False)
        if not exchange and not folder.exists():  # the fallback's one window: the old version is aside
            folder = next(folder.parent.glob(".d.*.old"))
        assert folder.is_dir(), f"killed at step {k}: {folder} is gone"
        version = {(folder / "v").read_text(), (folder / "w").read_text()}
        assert len(version) == 1, f"killed at step {k}: a mix of versions"
        versions |= version
    assert versions == {"old", "new"}  # the kills fell before and after the switch


@pytest.fixture
def full_fs(tmp_path: Path):
    """A 1 MiB tmpfs (root only: skipped where mounting is not allowed), unmounted afterwards."""
    import subprocess

    mount = tmp_path / "fs"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def _write_tensor(tmp: Path) -> None:
    with open(tmp, "wb") as fh:  # as the checkpoint writer does
        torch.save({"w": torch.zeros(1_000_000)}, fh)


def _save_safetensors(tmp: Path) -> None:  # as the embedding store does
    from safetensors.torch import save_file

    save_file({"embeddings": torch.zeros(1_000_000)}, tmp / "embeddings.safetensors")


def _copy_folder(tmp: Path) -> None:  # as a run copies an export out of the store
    import shutil

    src = tmp.parents[1] / "src"
    src.mkdir(exist_ok=True)
    (src / "big.bin").write_bytes(bytes(3_000_000))
    shutil.copytree(src, tmp, dirs_exist_ok=True)


@pytest.mark.parametrize(
    ("write", "folder"), [(_write_tensor, False), (_save_safetensors, True), (_copy_folder, True)]
)
def test_a_real_full_disk_names_the_path_whatever_library_wrote(full_fs: Path, write, folder: bool) -> None:
    # torch's zip writer says "unexpected pos", safetensors "os error 28", copytree a list of failures
    target = full_fs / "artifact"
    with pytest.raises(ArtifactWriteError, match=rf"cannot write {target}: No space left on device"):
        with atomic_dir(target) if folder else atomic_path(target) as tmp:
            write(tmp)
    assert list(full_fs.iterdir()) == []  # nothing half-written left


def test_a_published_folder_is_readable_by_the_team_whatever_wrote_it(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_dir(tmp_path / "store") as tmp:
        save_file({"embeddings": torch.zeros(3)}, tmp / "embeddings.safetensors")  # safetensors: 0600
        (tmp / "index").mkdir(mode=0o700)
        (tmp / "index" / "x.faiss").write_bytes(b"x")
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "store", *(tmp_path / "store").rglob("*")]}
    assert modes == {"store": 0o755, "embeddings.safetensors": 0o644, "index": 0o755, "x.faiss": 0o644}
