"""An export's dev metrics as it is served: the task's own torchmetrics over the pairs of a split, scored
by `load_student(path, backend)` (a teacher's CrossEncoder export: `load_cross_encoder`), so an int8 or
ONNX backend is measured exactly as `score` (or a reranker) would use it. Given several backends, each
line after the torch one says how much of torch's metric that backend keeps (`retention`).

    python -m dse_lightning.export.evaluate EXPORT --task stsb --backend onnx-int8
    python -m dse_lightning.export.evaluate TEACHER_EXPORT --task rte --backend torch onnx-int8 openvino-int8
    python -m dse_lightning.export.evaluate EXPORT_OR_BACKBONE --task stsb --cosine   # the embeddings alone
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torchmetrics.classification import BinaryAUROC

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
    if is_cross_encoder(path):
        model = load_cross_encoder(path, backend)
    else:  # a multi-task student: its head for this task
        student = load_student(path, backend)
        model = student.for_task(task_name) if student.tasks else student
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


def cosine_metrics(
    path: str | Path, task_name: str, split: str = "dev", data_dir: str | None = None
) -> dict[str, float]:
    """The embeddings alone, without any head: how the cosine of a pair's two sentence embeddings orders
    the split's pairs: Pearson and Spearman against a regression task's scores, ROC AUC against a binary
    task's labels. `path`: any sentence-transformers folder, a student export (its own pooling; a task it
    was not trained on is its zero-shot) or a backbone (all-MiniLM-L6-v2: its mean pooling)."""
    from sentence_transformers import SentenceTransformer

    task = load_task(task_name)
    if task.type not in ("regression", "binary"):
        raise ValueError(
            f"--cosine: task '{task_name}' is {task.type}; cosine orders regression or binary pairs"
        )
    rows = resolve_source(task, data_dir).load(split)
    model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True)
    a, b = (
        model.encode(list(rows[c]), batch_size=64, convert_to_tensor=True) for c in ("sentence1", "sentence2")
    )
    cosine = torch.nn.functional.cosine_similarity(a, b)
    labels = torch.tensor(rows["label"], dtype=task.kind.label_dtype)
    if task.type == "binary":
        return {"auroc": float(BinaryAUROC()(cosine, labels.long()))}
    metrics = task.build_metrics("", split)
    metrics.update(cosine, labels)
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
    p.add_argument(
        "--cosine",
        action="store_true",
        help="the embeddings alone (no head): cosine vs the scores (Pearson, Spearman) or labels (AUROC)",
    )
    args = p.parse_args(argv)
    if args.cosine:
        metrics = cosine_metrics(args.export, args.task, args.split, args.data_dir)
        print(json.dumps({"cosine": True, "task": args.task, "split": args.split, **metrics}))
        return 0
    by_backend = backend_metrics(args.export, args.task, args.backend, args.split, args.data_dir)
    for backend, metrics in by_backend.items():
        print(json.dumps({"backend": backend, "task": args.task, "split": args.split, **metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
