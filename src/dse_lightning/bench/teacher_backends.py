"""The cross-encoder at every serving backend it has: the student's speed-ups are read against the fastest.

A CrossEncoder export (export/cross_encoder.py) is given every backend's graphs (ONNX fp32 and dynamic
int8, OpenVINO fp32 and static int8, calibrated on a seeded sample of the task's train pairs), exactly as
`python -m dse_lightning.export.onnx EXPORT --openvino TASK` gives them to a teacher's export, then each
backend is timed on 1 query x N candidates (bench/timing.py `time_teacher`). By default the export is the
backbone with a random two-class head (speed does not depend on trained weights); `--teacher EXPORT` (a
trained teacher's export, copied so its store keeps it as it was) times that one instead and adds each
backend's dev metrics on `--teacher-task`, with the share of torch's metric each graph keeps.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ..config import load_task
from ..export.backends import BACKENDS, DEFAULT, GraphBackend
from ..export.calibration import calibration_inputs, calibration_source
from ..export.cross_encoder import KIND, export_cross_encoder, load_cross_encoder
from ..export.evaluate import backend_metrics
from ..export.onnx import add_onnx
from ..store import read_meta
from ..utils.portable import weight_hashes
from .models import build_teacher
from .timing import pair_tokens, time_teacher

log = logging.getLogger(__name__)
RANDOM_TASK = "mrpc"  # the random teacher's task: two classes, as the paper's binary tasks


def serving_backends() -> list[str]:
    """The registry's backends a cross-encoder can be served by: torch and every graph backend."""
    return [n for n, b in BACKENDS.items() if n == DEFAULT or isinstance(b, GraphBackend)]


def teacher_export(cfg: SimpleNamespace, folder: Path) -> Path:
    """The CrossEncoder export the bench times, in `folder`, with the graphs of `cfg.teacher_backends`."""
    path, task = folder / "cross_encoder", cfg.teacher_task or RANDOM_TASK
    if cfg.teacher:
        shutil.copytree(cfg.teacher, path)
    else:
        model, tokenizer = build_teacher(cfg.backbone)
        export_cross_encoder(path, model, tokenizer, load_task(RANDOM_TASK), cfg.max_length)
    graphs = [b for b in cfg.teacher_backends if BACKENDS[b].file]
    if graphs:
        pairs = calibration_inputs(task, cfg.data_dir, pairs=True)
        add_onnx(path, pairs, calibration_source(task, pairs=True), graphs)
    return path


def time_teacher_backends(
    cfg: SimpleNamespace, path: Path, queries: list[str], candidates: list[str]
) -> dict:
    """{backend: its timings per N}, for a trained export {backend: dev metrics (and retention)}, the
    calibration sample and the export's weight hashes."""
    timings = {}
    for name in cfg.teacher_backends:
        log.info("cross-encoder backend %s", name)
        timings[name] = time_teacher(load_cross_encoder(path, name).predict, queries, candidates, cfg.ns, cfg)
    quality = {}
    if cfg.teacher:
        quality = backend_metrics(path, cfg.teacher_task, cfg.teacher_backends, "dev", cfg.data_dir)
    calibration = read_meta(path, KIND).get("calibration", {}).get("source")
    return {
        "timings": timings,
        "dev_metrics": quality,
        "calibration": calibration,
        "weights": weight_hashes(path),  # what was timed, wherever its folder was
    }


def teacher_model(path: Path, timing: dict, queries: list[str], candidates: list[str], cfg: SimpleNamespace):
    """The export's classifier (for its FLOPs) and the mean WordPieces of the pairs `timing` measured
    (its queries with the candidates of the largest N it measured)."""
    n = max(n for n, t in timing["by_n"].items() if not t["extrapolated"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokens = pair_tokens(tokenizer, queries[: cfg.teacher_queries], candidates[:n], cfg.max_length)
    return AutoModelForSequenceClassification.from_pretrained(path).eval(), tokens
