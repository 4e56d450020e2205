"""Resume after a kill, determinism, and artifacts that fail their checksum (tiny random BERTs)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import MRPC_HEADER, ROOT, TINY_BERT, Stopped, make_cfg, mrpc_rows, write_tsv
from dse_lightning import load_student
from dse_lightning.results import RunResult
from dse_lightning.store import verify_file
from dse_lightning.train import train
from dse_lightning.utils.io import CorruptArtifactError, atomic_dir, locked

# Two epochs of 6 batches per stage, last.ckpt every 2 steps, a BiLSTM small enough to be quick.
SHORT = [
    "seed=3",
    "trainer.deterministic=true",
    "teacher.max_epochs=2",
    "student.max_epochs=2",
    "teacher.batch_size=8",
    "student.batch_size=8",
    "student.encoder.hidden_dim=16",
    "callbacks.last_checkpoint.every_n_train_steps=2",
]


def stop_at(module: str, step: int) -> list[str]:
    """Overrides adding conftest.StopAt: the run raises before that training step (a stand-in kill)."""
    return [
        "+callbacks.stop._target_=conftest.StopAt",
        f"+callbacks.stop.module={module}",
        f"+callbacks.stop.step={step}",
    ]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), f"{a} != {b}"


@pytest.mark.slow  # four full runs; the teacher's own resume is test_teacher_killed_at_epoch_end_...
def test_killed_stages_resume_to_the_uninterrupted_result(tmp_path: Path, mrpc_dir: Path, caplog) -> None:
    ref = train(make_cfg(tmp_path / "ref", mrpc_dir, "run", *SHORT))
    runs = tmp_path / "resumed"
    with pytest.raises(Stopped, match="stopped at TeacherModule step 9"):  # mid-epoch 2 of the teacher
        train(make_cfg(runs, mrpc_dir, "run1", *SHORT, *stop_at("TeacherModule", 9)))
    with caplog.at_level(logging.INFO), pytest.raises(Stopped, match="stopped at DistillModule step 5"):
        train(make_cfg(runs, mrpc_dir, "run2", *SHORT, *stop_at("DistillModule", 5)))
    assert "teacher: resuming from" in caplog.text and "(epoch 1, step 8)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        final = train(make_cfg(runs, mrpc_dir, "run3", *SHORT))
    assert "student: resuming from" in caplog.text and "(epoch 0, step 4)" in caplog.text
    assert (
        json.loads((runs / "run3" / "results.json").read_text())["student"]["metrics"]
        == final.student.metrics
    )
    assert final.teacher.metrics == ref.teacher.metrics
    assert final.student.metrics == ref.student.metrics
    # The final weights, not only the (coarse) metrics: the run dirs hold the retired checkpoints.
    assert_same_weights(
        ref_ckpt := tmp_path / "ref/run/teacher/checkpoints/last.ckpt",
        runs / "run2/teacher/checkpoints/last.ckpt",
    )
    assert_same_weights(
        tmp_path / "ref/run/student/checkpoints/last.ckpt", runs / "run3/student/checkpoints/last.ckpt"
    )
    verify_file(ref_ckpt, "")  # the retired checkpoints keep their manifest
    assert not list((runs / "cache").glob("*/mrpc/*.work"))  # work dirs are retired once published


@pytest.fixture(scope="module")
def teacher_reference(tmp_path_factory, tokenizer_path: str) -> tuple[Path, dict]:
    """An uninterrupted SHORT teacher run: its data dir and results."""
    tmp = tmp_path_factory.mktemp("reference")
    write_tsv(tmp / "glue/MRPC/train.tsv", MRPC_HEADER, mrpc_rows(48), bom=True)
    write_tsv(tmp / "glue/MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(16), bom=True)
    results = train(make_cfg(tmp, tmp / "glue", "run", *SHORT, "stage=teacher"))
    return tmp, results


@pytest.mark.parametrize(
    "stop",
    [
        [
            "+callbacks.stop._target_=conftest.StopAt",
            "+callbacks.stop.module=TeacherModule",
            "+callbacks.stop.step=6",
        ],
        ["+callbacks.stop._target_=conftest.StopInValidation", "+callbacks.stop.epoch=0"],
    ],
    ids=["at-epoch-end", "in-validation"],
)
def test_teacher_killed_at_epoch_end_or_in_validation_resumes_exactly(
    tmp_path: Path, teacher_reference: tuple[Path, dict], stop: list[str]
) -> None:
    ref_dir, ref = teacher_reference
    with pytest.raises(Stopped):
        train(make_cfg(tmp_path, ref_dir / "glue", "run1", *SHORT, "stage=teacher", *stop))
    got = train(make_cfg(tmp_path, ref_dir / "glue", "run2", *SHORT, "stage=teacher"))
    # Same best checkpoint (its logits) and same final weights as the uninterrupted run.
    logits = [torch.load(r.teacher.logits, weights_only=True)["logits"] for r in (ref, got)]
    assert torch.equal(*logits) and got.teacher.metrics == ref.teacher.metrics
    assert_same_weights(
        ref_dir / "run/teacher/checkpoints/last.ckpt", tmp_path / "run2/teacher/checkpoints/last.ckpt"
    )


def test_finished_student_is_reused_when_results_json_was_not_written(
    tmp_path: Path, mrpc_dir: Path, monkeypatch, caplog
) -> None:
    def killed(self, path):
        raise Stopped("killed before results.json")

    quick = ["student.max_epochs=1", "student.encoder.hidden_dim=16"]
    monkeypatch.setattr(RunResult, "write", killed)
    with pytest.raises(Stopped, match="killed before results.json"):
        train(make_cfg(tmp_path, mrpc_dir, "run1", *quick))
    monkeypatch.undo()
    with caplog.at_level(logging.INFO):
        results = train(make_cfg(tmp_path, mrpc_dir, "run2", *quick))
    assert "student: reusing the student finished in" in caplog.text and results.student.reused is True
    assert (tmp_path / "run2" / "results.json").is_file() and load_student(results.student.export)
    # it stays published, as a teacher does: an identical run (beside it or later) trains nothing
    again = train(make_cfg(tmp_path, mrpc_dir, "run3", *quick))
    assert again.student.reused is True and again.student.metrics == results.student.metrics
    assert not (tmp_path / "run3" / "student" / "checkpoints").exists()
    assert list((tmp_path / "run2" / "student" / "checkpoints").glob("*.ckpt"))  # retired into run2


@pytest.mark.slow  # two full runs (test_ddp compares a run with its DDP twin in the same tier)
def test_same_seed_and_deterministic_give_identical_runs(tmp_path: Path, mrpc_dir: Path) -> None:
    flags = ["seed=11", "trainer.deterministic=true", "student.max_epochs=2", "student.encoder.hidden_dim=16"]
    a = train(make_cfg(tmp_path / "a", mrpc_dir, "run", *flags))
    b = train(make_cfg(tmp_path / "b", mrpc_dir, "run", *flags))
    assert a.teacher.metrics == b.teacher.metrics and a.student.metrics == b.student.metrics
    logits = [torch.load(r.teacher.logits, weights_only=True)["logits"] for r in (a, b)]
    assert torch.equal(*logits)
    for stage in ("teacher", "student"):
        assert_same_weights(*(tmp_path / x / f"run/{stage}/checkpoints/last.ckpt" for x in "ab"))


@pytest.mark.parametrize("name", ["model.ckpt", "logits.pt"])
def test_corrupted_teacher_store_is_refused(tmp_path: Path, mrpc_dir: Path, name: str) -> None:
    first = train(make_cfg(tmp_path, mrpc_dir, "run1", "stage=teacher"))
    store = Path(first.teacher.checkpoint).parent
    (store / name).write_bytes((store / name).read_bytes()[:-100])  # a truncated copy
    with pytest.raises(
        CorruptArtifactError, match=rf"{name}: sha256 .* does not match .*manifest\.json.*delete {store}"
    ):
        train(make_cfg(tmp_path, mrpc_dir, "run2", "stage=teacher"))
    assert not (tmp_path / "run2" / "results.json").exists()


def test_corrupted_resume_checkpoint_is_refused(tmp_path: Path, mrpc_dir: Path) -> None:
    with pytest.raises(Stopped):
        train(make_cfg(tmp_path, mrpc_dir, "run1", *SHORT, "stage=teacher", *stop_at("TeacherModule", 3)))
    (last,) = (tmp_path / "cache").glob("teachers/mrpc/*.work/checkpoints/last.ckpt")
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(
        CorruptArtifactError, match=r"last\.ckpt: sha256 .* truncated or corrupted; delete it"
    ):
        train(make_cfg(tmp_path, mrpc_dir, "run2", *SHORT, "stage=teacher"))


def cli(tmp_path: Path, data_dir: Path, run: str, cache: str, tokenizer: str) -> list[str]:
    """The CLI on tiny random BERTs (the embedded tokenizer), deterministic, last.ckpt every 2 steps."""
    backbone = "{" + ",".join(f"{k}:{v}" for k, v in TINY_BERT.items()) + "}"
    return [
        sys.executable, "-m", "dse_lightning.train", f"data.dir={data_dir}",
        f"hydra.run.dir={tmp_path / run}", f"paths.cache_dir={tmp_path / cache}",
        f"teacher.backbone={backbone}", f"teacher.tokenizer={tokenizer}",
        "teacher.max_epochs=3", "student.max_epochs=3", "teacher.batch_size=8", "student.batch_size=8",
        "student.encoder.hidden_dim=16", "seed=5", "trainer.deterministic=true", "logger=none",
        "trainer.enable_progress_bar=false", "callbacks.last_checkpoint.every_n_train_steps=2",
    ]  # fmt: skip


def run_and_kill(cmd: list[str], first_checkpoint: str, cache: Path) -> str:
    """Start `cmd`, SIGKILL it as soon as a file matching `first_checkpoint` appears; its output."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not list(cache.glob(first_checkpoint)) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill:\n{out[-3000:]}"
    return out


@pytest.mark.slow
def test_cli_sigkill_in_each_stage_then_same_command_resumes(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    ref = subprocess.run(
        cli(tmp_path, mrpc_dir, "ref", "ref_cache", tokenizer_path), cwd=ROOT, capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    cmd = cli(tmp_path, mrpc_dir, "run", "cache", tokenizer_path)
    run_and_kill(cmd, "teachers/mrpc/*.work/checkpoints/last.ckpt", tmp_path / "cache")
    out = run_and_kill(cmd, "students/mrpc/*.work/checkpoints/last.ckpt", tmp_path / "cache")
    assert "teacher: resuming from" in out and "teacher: published" in out
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "student: resuming from" in final.stdout + final.stderr
    got, want = (RunResult.read(tmp_path / r / "results.json") for r in ("run", "ref"))
    assert got.teacher.metrics == want.teacher.metrics
    assert got.student.metrics == want.student.metrics
    # The same command reran into the same run dir: its checkpoints are the resumed stages' last ones.
    for stage in ("teacher", "student"):
        assert_same_weights(*(tmp_path / r / stage / "checkpoints/last.ckpt" for r in ("ref", "run")))


@pytest.mark.slow
def test_sigterm_saves_last_ckpt_exits_143_and_the_same_command_resumes(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    # a scheduler's preemption, mid-fit (20 epochs: still fitting when the first last.ckpt appears)
    cmd = [*cli(tmp_path, mrpc_dir, "run", "cache", tokenizer_path), "stage=teacher", "teacher.max_epochs=20"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cache, deadline = tmp_path / "cache", time.time() + 300
    while not list(cache.glob("teachers/mrpc/*.work/checkpoints/last.ckpt")) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]  # not 0: the job did not succeed
    assert "stopped by SIGTERM: no results.json; the same command resumes" in out
    assert not (tmp_path / "run" / "results.json").exists()
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "teacher: resuming from" in final.stdout + final.stderr


class Flag(logging.Handler):
    """Sets `event` when a record containing `text` is logged."""

    def __init__(self, text: str, event: threading.Event) -> None:
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_second_job_waits_for_the_teacher_and_reuses_it(tmp_path: Path, mrpc_dir: Path, caplog) -> None:
    first = train(make_cfg(tmp_path / "a", mrpc_dir, "run", "stage=teacher"))  # a teacher to publish
    published = Path(first.teacher.checkpoint).parent
    store = tmp_path / "b" / "cache" / published.relative_to(tmp_path / "a" / "cache")
    held, waiting = threading.Event(), threading.Event()
    flag = Flag("another job is building it", waiting)
    logging.getLogger("dse_lightning").addHandler(flag)

    def other_job() -> None:  # holds the teacher's lock until the second job waits, then publishes
        with locked(store):
            held.set()
            waiting.wait(timeout=120)
            with atomic_dir(store) as tmp:
                shutil.copytree(published, tmp, dirs_exist_ok=True)

    thread = threading.Thread(target=other_job)
    thread.start()
    held.wait(timeout=60)
    try:
        with caplog.at_level(logging.INFO):
            second = train(make_cfg(tmp_path / "b", mrpc_dir, "run", "stage=teacher"))
    finally:
        thread.join()
        logging.getLogger("dse_lightning").removeHandler(flag)
    assert waiting.is_set() and second.teacher.reused is True
    fitted = [p.name for p in (tmp_path / "b" / "run" / "teacher").iterdir()]
    assert fitted == ["cross_encoder"]  # it fitted nothing: the teacher's export is its only copy
