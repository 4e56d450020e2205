"""targets=student: a student export's logits as the source (a deeper student for a shallower one)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import make_cfg
from dse_lightning.config import load_task
from dse_lightning.logits import read_logits
from dse_lightning.pipeline.teacher import teacher_data
from dse_lightning.results import relative_degradation
from dse_lightning.targets import siamese
from dse_lightning.targets.siamese import pair_logits
from dse_lightning.train import train


def test_a_student_export_gives_the_logits_and_labels_the_transfer_set(
    tmp_path: Path, mrpc_dir: Path
) -> None:
    source = train(make_cfg(tmp_path, mrpc_dir, "deep", "distill.alpha=0")).student
    export = str(tmp_path / "deep" / source.export)
    cfg = make_cfg(tmp_path, mrpc_dir, "run", "targets=student", f"targets.export={export}", "augment=tang")
    results = train(cfg)
    targets = results.student.targets
    (key,) = targets["members"]
    assert targets["source"] == "student" and targets["teacher"] is False and key != results.teacher.key
    # its dev metrics are those of the export (the record of the run that made it), and the student's
    # degradation is against them
    assert targets["metrics"]["acc"] == pytest.approx(source.metrics["acc"], abs=1e-6)
    assert results.student.relative_degradation == relative_degradation(
        targets["metrics"], results.student.metrics
    )
    # the stored train logits are the export's scores of the train rows, checked against this data
    task = load_task("mrpc")
    dm = teacher_data(cfg, task)
    stored = read_logits(
        tmp_path / "cache" / "siamese" / "mrpc" / key / "logits.pt", dm.provenance(f"siamese-{key}")
    )
    rows = dm.raw("train")
    expected = pair_logits(export, task, list(rows["sentence1"]), list(rows["sentence2"]))
    assert torch.allclose(stored.for_ids(list(rows["id"])), expected, atol=1e-5)
    transfer = json.loads(
        next((tmp_path / "cache" / "transfer" / "mrpc").glob("*/manifest.json")).read_text()
    )
    assert transfer["meta"]["teachers"] == [key]  # the export labels the new pairs, not the cross-encoder
    # with the cross-encoder averaged in: another student, both members
    both = train(
        make_cfg(
            tmp_path, mrpc_dir, "both", "targets=student", f"targets.export={export}", "targets.teacher=true"
        )
    )
    assert both.student.targets["members"] == [both.teacher.key, key]
    assert both.student.key != results.student.key


def test_a_missing_export_is_refused_before_any_work(tmp_path: Path, mrpc_dir: Path) -> None:
    cfg = make_cfg(tmp_path, mrpc_dir, "run", "targets=student", f"targets.export={tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match=r"targets.export=.*nope: no student export there"):
        train(cfg)
    assert not (tmp_path / "cache" / "teachers").exists()  # refused before the teacher stage


def test_a_multitask_export_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-task export's manifest has `tasks`, not `task`: the refusal says so (it said 'a None
    student, not a stsb one')."""
    spec = {"tasks": {"mrpc": {}, "stsb": {}}}
    monkeypatch.setattr(siamese, "verify_export", lambda export, remedy: spec)
    ctx = SimpleNamespace(task=SimpleNamespace(name="stsb"))
    with pytest.raises(ValueError, match=r"targets.export=mt: a multi-task export \(tasks mrpc, stsb\)"):
        siamese.export_member(ctx, "mt", "targets.export=")
