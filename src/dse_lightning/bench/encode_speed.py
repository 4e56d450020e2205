"""Student encode throughput (sentences/s) by depth and backend, beside sentence-transformers' own encode.

Each variant is a real export (`export_student`, then `add_onnx` for the ONNX and OpenVINO backends) of
the paper's student cut to k layers, so what is timed is exactly what `load_student(path, backend)`
serves; the weights are the backbone's (speed does not depend on training; OpenVINO's static int8 is
calibrated on sentences outside the timed ones). The reference row is sentence-transformers' `encode` of
the same export folder on the same sentences and threads.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from ..config import load_task
from ..export import export_student, load_student
from ..export.onnx import add_onnx
from ..models.components import ConcatHead, Pooling, SiameseStudent, TransformerEncoder

log = logging.getLogger(__name__)
REFERENCE = "sentence-transformers encode (torch)"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


def _export(backbone: str, layers: int, max_length: int, folder: Path) -> Path:
    torch.manual_seed(0)
    encoder = TransformerEncoder(backbone, Pooling("top_k_mean", k=4), num_layers=layers).eval()
    student = SiameseStudent(encoder, ConcatHead(encoder.embed_dim, 1))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    return export_student(folder / f"layers{layers}", student, tokenizer, load_task("mrpc"), max_length)


def _rate(encode, sentences: list[str]) -> float:
    encode(sentences[:64])  # warm-up: first-call allocations and lazy initialisation
    start = time.perf_counter()
    encode(sentences)
    return len(sentences) / (time.perf_counter() - start)


def encode_speed(
    backbone: str,
    sentences: list[str],
    layers: list[int],
    max_length: int,
    batch_size: int,
    folder: Path,
    calibration: list[str],
) -> list[dict]:
    """One row per (layers, backend): sentences/s, and its ratio to the same backend at the first depth
    (`x_first_depth`), to the torch export at its depth (`x_torch`) and to sentence-transformers' encode
    at its depth (`x_sentence_transformers`)."""
    from sentence_transformers import SentenceTransformer

    rows = []
    for k in layers:
        path = _export(backbone, k, max_length, folder)
        add_onnx(path, calibration, "bench sentences outside the timed ones")
        model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True)
        rate = _rate(
            lambda s, m=model: m.encode(s, batch_size=batch_size, show_progress_bar=False), sentences
        )
        rows.append({"layers": k, "backend": REFERENCE, "sentences_per_s": rate})
        for backend in BACKENDS:
            student = load_student(path, backend)
            rate = _rate(lambda s, st=student: st.encode(s, batch_size), sentences)
            rows.append({"layers": k, "backend": backend, "sentences_per_s": rate})
        log.info("encode speed, %d layers: %s", k, [f"{r['sentences_per_s']:.0f}" for r in rows[-6:]])
    base = {r["backend"]: r["sentences_per_s"] for r in rows if r["layers"] == layers[0]}
    reference = {r["layers"]: r["sentences_per_s"] for r in rows if r["backend"] == REFERENCE}
    torch_rate = {r["layers"]: r["sentences_per_s"] for r in rows if r["backend"] == "torch"}
    for r in rows:
        r["x_first_depth"] = r["sentences_per_s"] / base[r["backend"]]
        r["x_torch"] = r["sentences_per_s"] / torch_rate[r["layers"]]
        r["x_sentence_transformers"] = r["sentences_per_s"] / reference[r["layers"]]
    return rows
