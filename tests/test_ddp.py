"""DDP on CPU (2 gloo processes) reproduces one process: dev metrics, teacher logits, one run dir.

Each run is the real CLI in a subprocess, because Lightning's DDP launcher re-runs the command per rank.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from dse_lightning import load_student
from dse_lightning.results import with_local_paths

pytestmark = pytest.mark.slow


def results(tmp_path: Path, name: str, backbone: Path, data: Path, *extra: str) -> dict:
    run_dir = tmp_path / "runs" / name
    run_cli(backbone, data, tmp_path / name / "cache", f"hydra.run.dir={run_dir}", *extra)
    return with_local_paths(json.loads((run_dir / "results.json").read_text()), run_dir)


def test_ddp_cpu_matches_one_process(tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path) -> None:
    one = results(tmp_path, "one", tiny_backbone, mrpc_dir)
    two = results(tmp_path, "ddp", tiny_backbone, mrpc_dir, "trainer=ddp_cpu")
    assert two["config"]["trainer"]["devices"] == 2
    for model in ("teacher", "student"):
        assert two[model]["metrics"] == pytest.approx(one[model]["metrics"], abs=1e-6), model
    # The exported logits: the same ids in the same order, no DistributedSampler padding, same values.
    a, b = (torch.load(r["teacher"]["logits"], weights_only=True) for r in (one, two))
    assert b["ids"] == a["ids"] and len(set(b["ids"])) == 48
    torch.testing.assert_close(b["logits"], a["logits"], rtol=0, atol=1e-5)
    # The students trained alike: their exported models score pairs the same.
    first = [f"The company said {i} shares rose." for i in range(8)]
    second = [f"Shares rose by {i} the company said." for i in range(8)]
    scores = [load_student(r["student"]["export"]).score(first, second) for r in (one, two)]
    torch.testing.assert_close(torch.as_tensor(scores[1]), torch.as_tensor(scores[0]), rtol=0, atol=1e-5)
    # One run dir for the job: rank 1 wrote its log into rank 0's dir instead of making its own.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp", "one"]
    assert (tmp_path / "runs" / "ddp" / "train_ddp_process_1.log").is_file()
