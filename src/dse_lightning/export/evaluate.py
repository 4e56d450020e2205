"""An export's dev metrics as it is served: the task's own torchmetrics over the pairs of a split, scored
by `load_student(path, backend)`, so an int8 or ONNX backend is measured exactly as `score` would use it.

    python -m dse_lightning.export.evaluate EXPORT --task stsb --backend onnx-int8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..config import load_task
from ..data.sources import resolve_source
from .backends import BACKENDS, DEFAULT
from .student_io import load_student


def evaluate_export(
    path: str | Path, task_name: str, backend: str = DEFAULT, split: str = "dev", data_dir: str | None = None
) -> dict[str, float]:
    """{metric: value} of the export on `split` of `task_name`, e.g. {"acc": 0.82, "f1": 0.87}."""
    task = load_task(task_name)
    if split not in task.eval_splits:
        raise ValueError(f"split={split!r}: task '{task_name}' evaluates on {task.eval_splits}")
    student = load_student(path, backend)
    if student.spec["task_type"] != task.type or student.spec["labels"] != task.labels:
        raise ValueError(
            f"{path}: exported for a {student.spec['task_type']} task with labels {student.spec['labels']}, "
            f"not task '{task_name}' ({task.type}, labels {task.labels})"
        )
    rows = resolve_source(task, data_dir).load(split)
    logits = student.logits(list(rows["sentence1"]), list(rows["sentence2"]))
    metrics = task.build_metrics("", split)
    metrics.update(task.kind.metric_input(logits), torch.tensor(rows["label"], dtype=task.kind.label_dtype))
    return {name: float(value) for name, value in metrics.compute().items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Dev metrics of a student export, served by a given backend")
    p.add_argument("export", type=Path, help="a student export folder (<run>/student/export)")
    p.add_argument(
        "--task",
        required=True,
        help="a task's config name: task/<name>.yaml, the package's or $DSE_CONFIG_DIR's",
    )
    p.add_argument("--backend", default=DEFAULT, choices=BACKENDS)  # the registry, as it is when parsing
    p.add_argument("--split", default="dev")
    p.add_argument("--data-dir", default=None, help="a glue_data folder (default: as data.dir resolves)")
    args = p.parse_args(argv)
    metrics = evaluate_export(args.export, args.task, args.backend, args.split, args.data_dir)
    print(json.dumps({"backend": args.backend, "task": args.task, "split": args.split, **metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
