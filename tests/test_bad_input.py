"""The bad-input matrix end to end: each is a clear error naming the file/line/option, nothing half-written.

Reader-level cases (header, column counts, labels, scores, empty sentences, missing files) are in
test_glue_reader.py; logits provenance in test_logits.py; write failures in test_io.py.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException

from conftest import MRPC_HEADER, ROOT, make_cfg, mrpc_rows, write_tsv
from dse_lightning.callbacks import NonFiniteLossError
from dse_lightning.config import CONFIG_DIR
from dse_lightning.train import train
from dse_lightning.utils.io import ArtifactWriteError


def partial_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_cli_dev_file_with_many_short_rows_fails_naming_file_and_line(tmp_path: Path, mrpc_dir: Path) -> None:
    rows = mrpc_rows(16)
    for i in (3, 7, 8, 12):
        rows[i] = rows[i][:4]  # the second sentence column is missing
    write_tsv(mrpc_dir / "MRPC" / "dev.tsv", MRPC_HEADER, rows, bom=True)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "dse_lightning.train", f"data.dir={mrpc_dir}", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(
        [*cmd, f"paths.cache_dir={tmp_path / 'cache'}"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode != 0
    assert f"{mrpc_dir / 'MRPC' / 'dev.tsv'}: 4 of 16 rows are malformed" in proc.stderr
    assert "first at line 5: 4 columns, header has 5" in proc.stderr
    assert not (run_dir / "results.json").exists()
    assert not [
        p for p in (tmp_path / "cache").glob("teachers/mrpc/*") if p.is_dir()
    ]  # no teacher store or work dir


@pytest.mark.parametrize(
    ("group", "typo", "valid"),
    [("task", "mrcp", "stsb"), ("teacher", "bert", "minilm"), ("student", "lstm", "bilstm")],
)
def test_unknown_option_lists_the_valid_ones(group: str, typo: str, valid: str) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        with pytest.raises(
            MissingConfigException,
            match=rf"Could not find '{group}/{typo}'\n\nAvailable options in '{group}':"
            rf"(\n\t\w+)*\n\t{valid}\n",
        ):
            compose("train", overrides=[f"{group}={typo}"])


def test_nan_loss_stops_naming_the_step(tmp_path: Path, mrpc_dir: Path) -> None:
    cfg = make_cfg(
        tmp_path, mrpc_dir, "run", "stage=teacher", "teacher.module.optimizer.lr=inf", "teacher.batch_size=8"
    )
    with pytest.raises(
        NonFiniteLossError,
        match=r"TeacherModule: non-finite loss \(nan\) at epoch 0, global step 1 \(batch 1\).*"
        r"Lower the learning rate",
    ):
        train(cfg)
    assert not (tmp_path / "run" / "results.json").exists()
    assert not [
        p for p in (tmp_path / "cache" / "teachers").glob("mrpc/*") if p.is_dir()
    ]  # no store/work dir


def test_full_disk_under_torch_save_names_the_checkpoint(tmp_path: Path, mrpc_dir: Path, monkeypatch) -> None:
    import builtins

    from dse_lightning.callbacks import checkpoint_io

    # the checkpoint's bytes go to /dev/full: what a full disk does to the real write
    monkeypatch.setattr(
        checkpoint_io, "open", lambda path, mode: builtins.open("/dev/full", mode), raising=False
    )
    with pytest.raises(ArtifactWriteError, match=r"cannot write .*checkpoints/.*\.ckpt: No space left"):
        train(make_cfg(tmp_path, mrpc_dir, "run", "stage=teacher"))
    assert partial_files(tmp_path) == [] and not (tmp_path / "run" / "results.json").exists()


def test_disk_full_while_checkpointing_is_a_clean_error(tmp_path: Path, mrpc_dir: Path, monkeypatch) -> None:
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(
        ArtifactWriteError, match=r"cannot write .*\.work/checkpoints/.*\.ckpt: No space left on device"
    ):
        train(make_cfg(tmp_path, mrpc_dir, "run", "stage=teacher"))
    assert partial_files(tmp_path) == [] and not (tmp_path / "run" / "results.json").exists()
    assert not list((tmp_path / "cache" / "teachers").glob("mrpc/*/manifest.json"))  # nothing published


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["teacher.max_epochs=0"], r"teacher\.max_epochs=0: must be an integer >= 1"),
        (["student.max_epochs=0"], r"student\.max_epochs=0: must be an integer >= 1"),
        (["data.max_length=2"], r"data\.max_length=2: must be an integer >= 8"),
        (["distill.alpha=1.5"], r"distill\.alpha=1\.5: must be in \[0, 1\]"),
        (["task=stsb", "distill=kl"], r"distill=kl: a regression task \(stsb\) has no class logits"),
        (["teacher.max_epochs=0", "distill.alpha=-1"], r"teacher\.max_epochs=0.*\n.*distill\.alpha=-1"),
        (["data.limit_train=0"], r"data\.limit_train=0: must be an integer >= 1"),  # 0 read as "no limit"
        (["data.limit_eval=-5"], r"data\.limit_eval=-5: must be an integer >= 1"),
        (
            ["student=dse", "student.encoder.keep_layers=[7]"],
            r"keep_layers=\[7\]: expected .* in 0\.\.\d \(backbone .* has \d layers",
        ),
        (
            ["student=dse", "student.encoder.num_layers=9"],
            r"student\.encoder\.num_layers=9: backbone .* has \d layers",
        ),
    ],
)
def test_options_that_cannot_work_are_refused_before_any_work(
    tmp_path: Path, mrpc_dir: Path, overrides: list[str], message: str
) -> None:
    from dse_lightning.options import OptionError

    with pytest.raises(OptionError, match=message):
        train(make_cfg(tmp_path, mrpc_dir, "run", *overrides))
    assert not (tmp_path / "cache").exists()  # nothing was read, fitted or cached


def test_truncating_most_inputs_is_an_error_naming_the_file(tmp_path: Path, mrpc_dir: Path) -> None:
    with pytest.raises(
        ValueError, match=r"MRPC/train\.tsv: 48 of 48 inputs \(100%\) are longer than data\.max_length=8"
    ):
        train(make_cfg(tmp_path, mrpc_dir, "run", "stage=teacher", "data.max_length=8"))
    assert not list((tmp_path / "cache").glob("teachers/mrpc/*/manifest.json"))  # no teacher published


def test_a_teacher_checkpoint_that_is_not_one_is_refused_by_its_header(
    tmp_path: Path, mrpc_dir: Path
) -> None:
    import zipfile

    from dse_lightning.options import OptionError

    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")  # it used to fail in torch.load: "invalid literal for int()"
    archive = tmp_path / "other.ckpt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "a zip, not a checkpoint")
    for path, why in [(text, "not a torch.save zip archive"), (archive, "no data.pkl inside")]:
        with pytest.raises(OptionError, match=rf"teacher\.checkpoint={path}: .*{why}"):
            train(make_cfg(tmp_path, mrpc_dir, "run", "stage=teacher", f"teacher.checkpoint={path}"))
    assert not (tmp_path / "cache").exists()


def _raises(error: Exception):
    def write(*args, **kwargs):
        raise error

    return write


NO_SPACE = "No space left on device"


@pytest.mark.slow  # a tiny teacher and student up to each write
@pytest.mark.parametrize(
    ("target", "error", "where"),
    [  # each kind of write, failing the way its library reports a full disk
        ("datasets.Dataset.save_to_disk", OSError(errno.ENOSPC, NO_SPACE), "cache/tokenized/"),
        ("dse_lightning.store.shutil.copytree", "copytree", "run/teacher/cross_encoder"),
        ("dse_lightning.export.student_io.save_file", "safetensors", "cache/students/mrpc/"),
        (
            "dse_lightning.augment.transfer.save_logits",
            OSError(errno.ENOSPC, NO_SPACE),
            "cache/transfer/mrpc/",
        ),
    ],
)
def test_a_full_disk_at_each_kind_of_write_names_its_path(
    tmp_path: Path, mrpc_dir: Path, monkeypatch, target: str, error, where: str
) -> None:
    import shutil

    from safetensors import SafetensorError

    if error == "copytree":  # what shutil.copytree raises: every file's failure in a list
        error = shutil.Error([("a", "b", f"[Errno 28] {NO_SPACE}: 'a' -> 'b'")])
    elif error == "safetensors":
        error = SafetensorError(f"Error while serializing: I/O error: {NO_SPACE} (os error 28)")
    monkeypatch.setattr(target, _raises(error))
    transfer = ["augment=pairs", "distill.alpha=0.5"] if "transfer" in target else []
    with pytest.raises(ArtifactWriteError, match=rf"cannot write .*{where}.*: {NO_SPACE}"):
        train(make_cfg(tmp_path, mrpc_dir, "run", "student=bilstm", *transfer))
    assert partial_files(tmp_path) == []
