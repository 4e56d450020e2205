"""A fitted teacher served by a graph backend when it labels new pairs: `teacher.backend=openvino-int8`.

The teacher's CrossEncoder export (teacher_export.py) is given that backend's graph once, as an artifact of
its own: `<cache_dir>/teacher_graphs/<task>/<key>/`, a CrossEncoder export with the graph (export/onnx.py
`graphs_writer`), keyed by the teacher, the backend and the calibration pairs (a seeded sample of the
task's train pairs, for the statically quantized backends). `GraphTeacher` then predicts through the one
inference path (`predict_logits`) as the TeacherModule it stands for does: the same batches, its output
map, both sentence orders averaged. `torch` (the default) is the module itself, fp32. `served_metrics`
judges the graph on the task's dev splits beside the fp32 teacher's metrics: what the transfer set it
labels records (results.json's `student.targets.teacher_backend`), so every run shows what the backend kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..export.backends import DEFAULT, GraphBackend, Run, get_backend
from ..export.backends.base import INPUTS
from ..export.calibration import sample_rows
from ..export.cross_encoder import KIND
from ..export.onnx import calibration_checksum, graphs_writer
from ..models.teacher_module import TeacherModule
from ..results import TeacherResult
from ..store import Store
from ..utils.io import sha256_json
from .distributed import wait_for_rank_zero
from .inference import PairRows, predict_logits


def graph_backend(cfg: DictConfig) -> GraphBackend | None:
    """The backend `teacher.backend` names for labelling: None for torch (the module itself)."""
    name = cfg.teacher.get("backend", DEFAULT)
    if name == DEFAULT:
        return None
    backend = get_backend(name)  # an unknown name: the registry's error, naming the choices
    if not isinstance(backend, GraphBackend):
        raise ValueError(f"teacher.backend={name!r}: not a graph backend a cross-encoder can be served by")
    return backend


class GraphTeacher(pl.LightningModule):
    """A TeacherModule's predictions from a compiled graph of its classifier (predict only)."""

    def __init__(self, module: TeacherModule, run: Run) -> None:
        super().__init__()
        self.task, self.outputs, self.run = module.task, module.outputs, run

    def _logits(self, encoding: dict[str, Any]) -> torch.Tensor:
        ids = encoding["input_ids"]
        feed = {k: (encoding[k] if k in encoding else torch.zeros_like(ids)).numpy() for k in INPUTS}
        logits = torch.from_numpy(self.run(feed))  # (B, M): the model's own outputs
        return logits if self.outputs is None else self.outputs(logits, self.task)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = self._logits(batch)
        if "swapped" in batch:  # teacher.both_orders: as TeacherModule.forward
            logits = (logits + self._logits(batch["swapped"])) / 2
        return logits

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return {"ids": batch["ids"], "logits": self(batch).float()}


def graph_teacher(
    cfg: DictConfig,
    data: GluePairDataModule,
    trainer: pl.Trainer,
    teacher: TeacherResult,
    module: TeacherModule,
    backend: GraphBackend,
) -> GraphTeacher:
    """`module` served by `backend`: its export's graph made once (rank 0; the others wait), compiled."""
    pairs = sample_rows(data.raw("train"), pairs=True) if backend.with_calibration else None
    spec = {"teacher": teacher.key, "backend": backend.name}
    key = sha256_json({**spec, "calibration": pairs and calibration_checksum(pairs)})[:16]
    store = Store(Path(cfg.paths.cache_dir).resolve() / "teacher_graphs" / data.task.name, KIND)

    def build():
        _, write = graphs_writer(teacher.export, pairs, f"{data.task.name}/train pairs", [backend.name])
        return store.publish(key, write, barrier=lambda: wait_for_rank_zero(trainer, "teacher graph"))

    artifact = store.get_or_build(key, build)
    return GraphTeacher(module, backend.compile(artifact.path / backend.file))


def served_metrics(
    cfg: DictConfig,
    data: GluePairDataModule,
    trainer: pl.Trainer,
    served: GraphTeacher,
    teacher: TeacherResult,
) -> dict:
    """The graph's dev metrics (in the teacher's batches and orders), the fp32 teacher's, and the share of
    each it keeps (graph / fp32)."""
    both, batch_size, metrics = cfg.teacher.get("both_orders", False), cfg.teacher.batch_size, {}
    for split in data.task.eval_splits:
        raw = data.raw(split)
        pairs = list(zip(raw["sentence1"], raw["sentence2"], strict=True))
        rows = PairRows(pairs, list(raw["id"]), data.tokenizer, data.hparams.max_length, batch_size,
                        name=f"{data.task.name}/{split}", both_orders=both)  # fmt: skip
        metrics |= data.task.evaluate(split, predict_logits(trainer, served, rows).values, raw["label"])
    fp32 = {k: teacher.metrics[k] for k in metrics if k in teacher.metrics}
    kept = {k: round(metrics[k] / v, 4) for k, v in fp32.items() if v}
    return {"teacher": teacher.key, "metrics": metrics, "fp32_metrics": fp32, "kept": kept}
