"""A teacher fitted here, exported as a CrossEncoder folder and brought back through `teacher=cross_encoder`,
gives the same train logits (1e-5) and so the same student; score files written from its logits too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_cfg
from dse_lightning.config import load_task
from dse_lightning.logits import read_logits
from dse_lightning.pipeline.teacher import logits_file, teacher_data
from dse_lightning.train import train
from test_ready_teacher import ready_cfg
from test_score_teacher import scores_cfg, write_jsonl

MRPC = load_task("mrpc")


def logits_of(cfg, teacher) -> dict[str, torch.Tensor]:
    """The teacher's published logits by split, {split: (ids, values)}, read against their provenance."""
    dm = teacher_data(cfg, MRPC)
    folder = Path(teacher.logits).parent
    return {s: read_logits(folder / logits_file(s), dm.provenance(teacher.identity, s)) for s in MRPC.splits}


@pytest.mark.slow  # three tiny runs, each with a student
def test_an_exported_teacher_and_its_score_files_give_the_same_student(tmp_path: Path, mrpc_dir: Path):
    # A teacher that learned the majority class (a ready model below chance on dev is refused as misread).
    fit_cfg = make_cfg(
        tmp_path / "fit", mrpc_dir, "run", "teacher.max_epochs=2", "teacher.module.optimizer.lr=1e-3"
    )
    fitted = train(fit_cfg)
    ready = ready_cfg(tmp_path / "ready", mrpc_dir, Path(fitted.teacher.export), stage="all")
    back = train(ready)
    assert back.teacher.key != fitted.teacher.key  # a teacher of its own, keyed by its weights' hash
    before, after = logits_of(fit_cfg, fitted.teacher), logits_of(ready, back.teacher)
    for split, logits in before.items():
        torch.testing.assert_close(after[split].for_ids(logits.ids), logits.values, rtol=0, atol=1e-5)
    assert back.teacher.metrics == pytest.approx(fitted.teacher.metrics, abs=1e-6)
    assert back.student.metrics == pytest.approx(fitted.student.metrics, abs=1e-6)

    files = {}
    for split, logits in before.items():
        rows = [{"id": i, "logits": v.tolist()} for i, v in zip(logits.ids, logits.values, strict=True)]
        files[split] = write_jsonl(tmp_path / f"{split}.jsonl", rows)
    scores = train(
        scores_cfg(
            tmp_path / "scores", mrpc_dir, f"teacher.train={files['train']}", f"teacher.dev={files['dev']}"
        )
    )
    assert scores.teacher.metrics == pytest.approx(fitted.teacher.metrics, abs=1e-6)
    assert scores.student.metrics == pytest.approx(fitted.student.metrics, abs=1e-6)
