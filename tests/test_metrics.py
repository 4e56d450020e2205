"""Task metrics (built from the task YAMLs) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from dse_lightning.config import load_task


def compute(
    task_name: str, logits: torch.Tensor, labels: torch.Tensor, split: str = "dev"
) -> dict[str, float]:
    task = load_task(task_name)
    metrics = task.build_metrics("val/", split)
    metrics.update(task.kind.metric_input(logits), labels)
    return {k: round(float(v), 6) for k, v in metrics.compute().items()}


def test_binary_two_logits_acc_f1() -> None:
    # P(1) = softmax: 0.73, 0.27, 0.73, 0.27 -> preds 1, 0, 1, 0 vs labels 1, 0, 0, 1
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([1, 0, 0, 1])
    # tp=1 fp=1 fn=1: precision 1/2, recall 1/2, F1 1/2; accuracy 2/4
    assert compute("mrpc", logits, labels) == {"val/acc": 0.5, "val/f1": 0.5}


def test_binary_one_logit_uses_sigmoid() -> None:
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-0.2], [3.0]])  # preds 1 0 1 0 1
    labels = torch.tensor([1, 0, 1, 1, 0])
    # tp=2 fp=1 fn=1: F1 = 2*2 / (2*2 + 1 + 1) = 2/3; accuracy 3/5
    assert compute("qqp", logits, labels) == {"val/acc": 0.6, "val/f1": round(2 / 3, 6)}


def test_regression_pearson_spearman() -> None:
    scores = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    # Pearson with a linear target is 1; Spearman of ranks (1,2,3,4) vs (1,3,2,4): 1 - 6*2/(4*15) = 0.8
    assert compute("stsb", scores, torch.tensor([2.0, 4.0, 6.0, 8.0]))["val/pearson"] == pytest.approx(
        1.0, abs=1e-5
    )
    assert compute("stsb", scores, torch.tensor([0.5, 2.5, 2.0, 4.5]))["val/spearman"] == pytest.approx(
        0.8, abs=1e-5
    )


def test_mnli_matched_and_mismatched_names() -> None:
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])  # argmax 0, 1, 2
    assert compute("mnli", logits, torch.tensor([0, 1, 1])) == {"val/acc": round(2 / 3, 6)}
    assert compute("mnli", logits, torch.tensor([0, 0, 0]), split="dev_mm") == {"val/acc_mm": round(1 / 3, 6)}


@pytest.mark.parametrize("name", ["mrpc", "qqp", "mnli", "qnli", "stsb", "rte"])
def test_every_task_monitors_one_of_its_metrics(name: str) -> None:
    task = load_task(name)
    assert task.monitor in task.metrics and task.splits["train"].file == "train"
