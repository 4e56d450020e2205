"""Stores built through trainer.predict: streamed distinct lines, shards, a killed build resumed, DDP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dse_lightning import load_student
from dse_lightning.scoring import EmbeddingStore, student_identity
from dse_lightning.scoring.build import ShardWriter, build_store, default_trainer, plan_for
from dse_lightning.scoring.corpus import distinct, read_stream
from test_scoring import export_tiny

LINES = [f"Sentence number {i} is {'long ' * (i % 5)}here." for i in range(23)]


def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join([*LINES[:10], "", LINES[3], *LINES[10:], LINES[0]]) + "\n\n")
    return path


def build(export: Path, cands: Path, store: Path, trainer=None, shard_size: int = 4, **kw) -> EmbeddingStore:
    plan = plan_for(export, cands, store, "torch", shard_size)
    build_store(
        trainer or default_trainer(plan, progress=False), plan, export, cands, store, batch_size=3, **kw
    )
    return EmbeddingStore.load(store, student_identity(export))


class KilledAfter(ShardWriter):
    """Writes `shards` shards, then dies like a killed process (KeyboardInterrupt is what SIGINT raises)."""

    def __init__(self, plan, shards: int) -> None:
        super().__init__(plan)
        self.left = shards

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, *args):
        super().write_on_batch_end(trainer, pl_module, prediction, batch_indices, batch, *args)
        if batch["last"]:
            self.left -= 1
            if not self.left:
                raise KeyboardInterrupt


def test_store_rows_are_the_distinct_lines_encoded(tokenizer_path: str, tmp_path: Path) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    store = build(export, corpus(tmp_path), tmp_path / "store")
    assert store.sentences == LINES  # first occurrence order, blanks and repeats dropped
    expected = load_student(export).encode(LINES)
    torch.testing.assert_close(store.candidates.rows(), expected, atol=1e-5, rtol=1e-4)
    assert not (tmp_path / "store.work").exists()  # the shards are gone once joined


def test_killed_build_resumes_by_shard(tokenizer_path: str, tmp_path: Path, monkeypatch) -> None:
    export, cands = export_tiny(tmp_path / "export", tokenizer_path, seed=0), corpus(tmp_path)
    whole = build(export, cands, tmp_path / "whole")
    plan = plan_for(export, cands, tmp_path / "store", "torch", 4)
    trainer = default_trainer(plan, progress=False)
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, ShardWriter)] + [
        KilledAfter(plan, 2)
    ]
    with pytest.raises(BaseException):  # noqa: B017, PT011 - Lightning re-raises the interrupt its own way
        build_store(trainer, plan, export, cands, tmp_path / "store", batch_size=3)
    assert not (tmp_path / "store").exists() and plan.finished() == {0, 1}
    encoded: list[str] = []
    real = load_student

    def spy(*args, **kwargs):
        student = real(*args, **kwargs)
        inner = student.encode_batch
        student.encode_batch = lambda batch: (encoded.extend(batch), inner(batch))[1]
        return student

    monkeypatch.setattr("dse_lightning.scoring.build.load_student", spy)
    resumed = build(export, cands, tmp_path / "store")
    assert sorted(encoded) == sorted(LINES[8:])  # shards 0 and 1 (rows 0-7) were not encoded again
    assert resumed.sentences == whole.sentences
    torch.testing.assert_close(resumed.candidates.rows(), whole.candidates.rows(), rtol=0, atol=1e-6)


def test_a_shard_of_another_build_is_refused(tokenizer_path: str, tmp_path: Path) -> None:
    export, cands = export_tiny(tmp_path / "export", tokenizer_path, seed=0), corpus(tmp_path)
    plan = plan_for(export, cands, tmp_path / "store", "torch", 4)
    plan.write(0, LINES[:4], torch.zeros(4, 16))
    other = plan_for(
        export_tiny(tmp_path / "other", tokenizer_path, seed=1), cands, tmp_path / "store", "torch", 4
    )
    with pytest.raises(ValueError, match=r"store\.work.*another build"):
        other.finished()


def test_candidate_files_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: not UTF-8"):
        list(read_stream(bad, "candidates"))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        next(read_stream(tmp_path / "missing.txt", "--candidates"))
    (tmp_path / "blank.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="no sentences"):
        list(read_stream(tmp_path / "blank.txt", "--candidates"))
    assert list(distinct(["a", "b", "a", "c", "b"])) == ["a", "b", "c"]


@pytest.mark.slow
def test_ddp_cpu_store_equals_one_process(tokenizer_path: str, tmp_path: Path) -> None:
    export, cands = export_tiny(tmp_path / "export", tokenizer_path, seed=0), corpus(tmp_path)
    one = build(export, cands, tmp_path / "one", dtype="float32")
    cmd = [sys.executable, "-m", "dse_lightning.build_store", f"export={export}", f"candidates={cands}",
           f"store={tmp_path / 'two'}", "trainer=ddp_cpu", "shard_size=4", "batch_size=3",
           f"paths.root_dir={tmp_path}"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True, timeout=600)
    two = EmbeddingStore.load(tmp_path / "two", student_identity(export))
    assert two.sentences == one.sentences  # same ids, same order: shards 0, 2, 4 on rank 0, 1, 3, 5 on rank 1
    torch.testing.assert_close(two.candidates.rows(), one.candidates.rows(), rtol=0, atol=1e-5)
