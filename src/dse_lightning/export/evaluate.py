"""An export's dev metrics as it is served: the task's own torchmetrics over the pairs of a split, scored
by `load_student(path, backend)` (a teacher's CrossEncoder export: `load_cross_encoder`), so an int8 or
ONNX backend is measured exactly as `score` (or a reranker) would use it. Given several backends, each
line after the torch one says how much of torch's metric that backend keeps (`retention`).

    python -m dse_lightning.export.evaluate EXPORT --task stsb --backend onnx-int8
    python -m dse_lightning.export.evaluate TEACHER_EXPORT --task rte --backend torch onnx-int8 openvino-int8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..config import load_task
from ..data.sources import resolve_source
from .backends import BACKENDS, DEFAULT
from .cross_encoder import is_cross_encoder, load_cross_encoder
from .student_io import load_student


def evaluate_export(
    path: str | Path, task_name: str, backend: str = DEFAULT, split: str = "dev", data_dir: str | None = None
) -> dict[str, float]:
    """{metric: value} of the export on `split` of `task_name`, e.g. {"acc": 0.82, "f1": 0.87}."""
    task = load_task(task_name)
    if split not in task.eval_splits:
        raise ValueError(f"split={split!r}: task '{task_name}' evaluates on {task.eval_splits}")
    model = (load_cross_encoder if is_cross_encoder(path) else load_student)(path, backend)
    if model.spec["task_type"] != task.type or model.spec["labels"] != task.labels:
        raise ValueError(
            f"{path}: exported for a {model.spec['task_type']} task with labels {model.spec['labels']}, "
            f"not task '{task_name}' ({task.type}, labels {task.labels})"
        )
    rows = resolve_source(task, data_dir).load(split)
    logits = model.logits(list(rows["sentence1"]), list(rows["sentence2"]))
    metrics = task.build_metrics("", split)
    metrics.update(task.kind.metric_input(logits), torch.tensor(rows["label"], dtype=task.kind.label_dtype))
    return {name: float(value) for name, value in metrics.compute().items()}


def backend_metrics(
    path: str | Path, task_name: str, backends: list[str], split: str = "dev", data_dir: str | None = None
) -> dict[str, dict[str, float]]:
    """{backend: its metrics}, with `retention` {metric: value / torch's value} for every backend but torch
    when torch is among `backends` (how much of the export as trained a graph keeps)."""
    out = {b: evaluate_export(path, task_name, b, split, data_dir) for b in backends}
    reference = out.get(DEFAULT)
    for backend, metrics in out.items():
        if reference is not None and backend != DEFAULT:
            metrics["retention"] = {k: metrics[k] / reference[k] for k in reference if reference[k]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Dev metrics of an export, served by the given backends")
    p.add_argument(
        "export",
        type=Path,
        help="a student export folder (<run>/student/export) or a CrossEncoder export "
        "(<run>/teacher/cross_encoder)",
    )
    p.add_argument(
        "--task",
        required=True,
        help="a task's config name: task/<name>.yaml, the package's or $DSE_CONFIG_DIR's",
    )
    p.add_argument(  # the registry, as it is when parsing
        "--backend", nargs="+", default=[DEFAULT], choices=BACKENDS, help="one line of metrics each"
    )
    p.add_argument("--split", default="dev")
    p.add_argument("--data-dir", default=None, help="a glue_data folder (default: as data.dir resolves)")
    args = p.parse_args(argv)
    by_backend = backend_metrics(args.export, args.task, args.backend, args.split, args.data_dir)
    for backend, metrics in by_backend.items():
        print(json.dumps({"backend": backend, "task": args.task, "split": args.split, **metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
