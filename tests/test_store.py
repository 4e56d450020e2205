"""The one artifact store: publish / verify with a manifest, get-or-build under a lock, checkpoint folders."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from dse_lightning.store import (
    MANIFEST,
    Artifact,
    Store,
    publish,
    record_file,
    verify,
    verify_file,
)
from dse_lightning.utils.io import CorruptArtifactError, atomic_path, sha256_file


def write_two(tmp: Path) -> dict:
    (tmp / "a.bin").write_bytes(b"a")
    (tmp / "d").mkdir()
    (tmp / "d" / "b.bin").write_bytes(b"b")
    return {"rows": 2}


def test_publish_then_verify_every_file(tmp_path: Path) -> None:
    art = publish(tmp_path / "x", "thing", write_two)
    assert art == Artifact(tmp_path / "x", {"rows": 2})
    manifest = json.loads((tmp_path / "x" / MANIFEST).read_text())
    assert manifest["kind"] == "thing" and set(manifest["files"]) == {"a.bin", "d/b.bin"}
    assert verify(tmp_path / "x", "thing", "delete it") == {"rows": 2}
    (tmp_path / "x" / "d" / "b.bin").write_bytes(b"")
    with pytest.raises(
        CorruptArtifactError, match=r"d/b\.bin: sha256 .* does not match .*manifest\.json.*delete it"
    ):
        verify(tmp_path / "x", "thing", "delete it")
    (tmp_path / "x" / "a.bin").unlink()
    with pytest.raises(
        CorruptArtifactError, match=r"a\.bin: missing, though .*manifest\.json lists it; delete it"
    ):
        verify(tmp_path / "x", "thing", "delete it")


def test_wrong_kind_or_no_manifest_is_refused(tmp_path: Path) -> None:
    publish(tmp_path / "x", "thing", write_two)
    with pytest.raises(CorruptArtifactError, match=r"is not a dse-artifact/1 other; fix it"):
        verify(tmp_path / "x", "other", "fix it")
    (tmp_path / "x" / MANIFEST).unlink()
    with pytest.raises(CorruptArtifactError, match=r"not a complete thing \(no manifest\.json\)"):
        verify(tmp_path / "x", "thing", "")
    with pytest.raises(FileNotFoundError, match=r"no such thing: .*/y$"):  # a wrong path, not a damaged one
        verify(tmp_path / "y", "thing", "")


def test_a_failing_build_publishes_nothing(tmp_path: Path) -> None:
    def fails(tmp: Path) -> dict:
        (tmp / "half.bin").write_bytes(b"half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError, match="killed"):
        publish(tmp_path / "x", "thing", fails)
    assert list(tmp_path.iterdir()) == []


def test_get_or_build_builds_once_and_reuses(tmp_path: Path, caplog) -> None:
    store = Store(tmp_path, "thing")
    built: list[str] = []

    def build() -> Artifact:
        built.append("k")
        return store.publish("k", write_two)

    first = store.get_or_build("k", build)
    again = store.get_or_build("k", build)
    assert built == ["k"] and not first.reused and again.reused and again.meta == {"rows": 2}
    store.get_or_build("k", build, rebuild=True)
    assert built == ["k", "k"]
    (tmp_path / "k" / "a.bin").write_bytes(b"corrupt")
    with pytest.raises(CorruptArtifactError, match=r"delete .*/k to build it again"):
        store.get_or_build("k", build)
    with caplog.at_level(logging.WARNING):
        assert not store.get_or_build("k", build, rebuild_corrupt=True).reused
    assert "thing" in caplog.text and "is incomplete or corrupted" in caplog.text and built == ["k"] * 3


def test_checkpoint_folder_manifest_file_by_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "last.ckpt"
    with pytest.raises(CorruptArtifactError, match="not in .*manifest.json, so it cannot be trusted"):
        ckpt.write_bytes(b"x")
        verify_file(ckpt, "delete it")
    save = lambda data: _save(ckpt, data)  # noqa: E731
    save(b"version 1")
    verify_file(ckpt, "delete it")  # intact
    ckpt.write_bytes(b"version 1, truncat")
    with pytest.raises(
        CorruptArtifactError, match=r"last\.ckpt: sha256 .* truncated or corrupted; delete it"
    ):
        verify_file(ckpt, "delete it")


def _save(path: Path, data: bytes) -> None:
    with atomic_path(path, before_rename=lambda tmp: record_file(path, sha256_file(tmp))) as tmp:
        tmp.write_bytes(data)


def test_kill_between_the_two_renames_is_not_corruption(tmp_path: Path, monkeypatch) -> None:
    ckpt = tmp_path / "last.ckpt"
    _save(ckpt, b"version 1")
    real_replace = os.replace

    def killed_before_the_file_rename(src, dst):
        if Path(dst) == ckpt:
            raise KeyboardInterrupt  # the manifest is already renamed, the checkpoint not yet
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_file_rename)
    with pytest.raises(KeyboardInterrupt):
        _save(ckpt, b"version 2")
    monkeypatch.undo()
    assert ckpt.read_bytes() == b"version 1"
    verify_file(ckpt, "")  # the previous version's hash is still accepted


def test_lightning_checkpoints_enter_the_manifest(tmp_path: Path) -> None:
    from dse_lightning.callbacks.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.arange(10)}, tmp_path / "best.ckpt")
    verify_file(tmp_path / "best.ckpt", "")
    io.remove_checkpoint(tmp_path / "best.ckpt")
    assert json.loads((tmp_path / MANIFEST).read_text())["files"] == {}
