"""Every task type through every stage, from hub-layout data (`data.hub_dir`): teacher fit, logits export
and verification, distillation with each loss that applies, export, `load_student(...).score` and the
`score` CLI's top-k. Binary: MRPC (real rows); regression: STS-B (real rows); multiclass: MNLI (fixture rows
in the hub schema, evaluated on dev matched and mismatched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_cfg
from dse_lightning import load_student
from dse_lightning.logits import Provenance, load_logits
from dse_lightning.score import main as score_main
from dse_lightning.train import train
from hub_mirror import build_mirror

SLOW = pytest.mark.slow  # one case per task type in the fast tier; the other losses in the slow one
CASES = [  # task, loss, metrics of the results, the score CLI's extra flags
    pytest.param("mrpc", "mse", {"acc", "f1"}, [], marks=SLOW, id="mrpc-mse"),
    pytest.param("mrpc", "kl", {"acc", "f1"}, [], id="mrpc-kl"),
    pytest.param("stsb", "mse", {"pearson", "spearman"}, [], id="stsb-mse"),
    pytest.param("mnli", "mse", {"acc", "acc_mm"}, ["--label", "entailment"], id="mnli-mse"),
    pytest.param("mnli", "kl", {"acc", "acc_mm"}, ["--label", "contradiction"], marks=SLOW, id="mnli-kl"),
]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return build_mirror(tmp_path_factory.mktemp("hub") / "glue", ["mrpc", "stsb", "mnli"], rows=32)


@pytest.mark.parametrize(("task", "loss", "metrics", "flags"), CASES)
def test_task_type_through_every_stage(tmp_path: Path, mirror: Path, task, loss, metrics, flags) -> None:
    overrides = [
        f"task={task}",
        f"distill={loss}",
        "distill.alpha=0.5",
        "student=dse",
        "student.max_epochs=1",
    ]
    cfg = make_cfg(tmp_path, tmp_path, "run", f"data.hub_dir={mirror}", *overrides)
    result = train(cfg)
    assert set(result.teacher.metrics) == metrics and set(result.student.metrics) == metrics
    assert result.student.loss["kind"] == loss
    # the teacher's train logits were exported and verify against the hub rows they were computed on
    payload = torch.load(result.teacher.logits, weights_only=True)
    provenance = Provenance(**payload["provenance"])
    assert provenance.task == task and provenance.data_checksum
    logits = load_logits(result.teacher.logits, provenance, payload["ids"])
    assert logits.shape[0] == result.data["train"]
    student = load_student(result.student.export)
    scores = student.score(["a man plays a guitar."], ["a man plays."])
    assert scores.shape == ((1, 3) if task == "mnli" else (1,))
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("a man plays a guitar.\nthe dog runs in the park.\na cat sleeps.\n")
    out = tmp_path / "hits.jsonl"
    score_main(
        [
            "--student",
            result.student.export,
            "--store",
            str(tmp_path / "store"),
            "--candidates",
            str(candidates),
        ]
        + ["--query", "a man plays.", "--top-k", "2", "--output", str(out), *flags]
    )
    hits = json.loads(out.read_text())["hits"]
    assert [h["rank"] for h in hits] == [1, 2] and hits[0]["score"] >= hits[1]["score"]
