"""Student encode throughput (sentences/s) by depth and backend, beside sentence-transformers' own encode.

Each variant is a real export (`export_student`, then `add_onnx` for the ONNX and OpenVINO backends) of
the paper's student cut to k layers, so what is timed is exactly what `load_student(path, backend)`
serves; the weights are the backbone's (speed does not depend on training; OpenVINO's static int8 is
calibrated on sentences outside the timed ones). The reference row is sentence-transformers' `encode` of
the same export folder on the same sentences and threads. Each row is the median of `PASSES` timed
passes over the sentences.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer

from ..config import load_task
from ..embeddings.encode import length_order
from ..export import export_student, load_student
from ..export.backends import BACKENDS, DEFAULT
from ..export.onnx import add_onnx
from .flops import encode_flops
from .models import dse_student
from .timing import median_seconds, peak_rss_mib, reset_peak_rss, rss_mib

log = logging.getLogger(__name__)
REFERENCE = "sentence-transformers encode (torch)"
PASSES = 3  # timed passes a row: two idle runs of one pass each put 3 layers at 2.05x and 1.77x 6 layers


def paper_export(backbone: str, layers: int | None, max_length: int, folder: Path) -> Path:
    """The paper's student on `backbone` cut to `layers` (None: all), random head, exported into `folder`."""
    torch.manual_seed(0)
    student = dse_student(backbone, num_layers=layers).eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    return export_student(
        folder / f"layers{layers or 'all'}", student, tokenizer, load_task("mrpc"), max_length
    )


def _passes(encode, sentences: list[str]) -> tuple[float, list[float]]:
    """(the median pass's seconds, every pass's) of `PASSES` timed passes after a warm-up batch."""
    encode(sentences[:64])  # warm-up: first-call allocations and lazy initialisation
    return median_seconds(encode, [sentences] * PASSES, warmup=0)


def _batch_lengths(backbone: str, sentences: list[str], max_length: int, batch_size: int) -> list[list[int]]:
    """WordPieces of each sentence, in the batches `encode_corpus` forms (sorted by characters)."""
    lengths = AutoTokenizer.from_pretrained(backbone)(sentences, truncation=True, max_length=max_length)
    ordered = [len(lengths["input_ids"][i]) for i in length_order(sentences)]
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def _bound(row: dict, flops: int, seconds: float, peaks: dict, precision: str) -> dict:
    """The row's achieved GFLOP/s (the fp32 model's FLOPs, also for int8) against its precision's peak."""
    rate = flops / seconds / 1e9
    pct = 100 * rate / peaks[precision]["best"]
    return {**row, "gflop_per_s": rate, "peak_precision": precision, "pct_of_peak": pct}


def _row(
    layers: int, backend: str, load, sentences: list[str], flops: int, peaks: dict, precision: str = "fp32"
) -> dict:
    """Load a backend (`load() -> encode`) and time it; the process's resident set before loading and
    its peak while loading and encoding (the kernel's peak mark reset first)."""
    reset_peak_rss()
    before = rss_mib()
    median, passes = _passes(load(), sentences)
    memory = {
        "rss_before_mib": before,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_method": "VmHWM since reset",
    }
    row = {"layers": layers, "backend": backend, "sentences_per_s": len(sentences) / median, "pass_s": passes}
    return _bound(row | memory, flops, median, peaks, precision)


def encode_speed(
    backbone: str,
    sentences: list[str],
    layers: list[int],
    max_length: int,
    batch_size: int,
    folder: Path,
    calibration: list[str],
    peaks: dict,
) -> list[dict]:
    """One row per (layers, backend): sentences/s, its ratio to the same backend at the first depth
    (`x_first_depth`), to the torch export at its depth (`x_torch`) and to sentence-transformers' encode
    at its depth (`x_sentence_transformers`), its GFLOP/s against `peaks` (peaks.py) of its precision,
    and the process's resident set before the row and at its peak during it."""
    from sentence_transformers import SentenceTransformer

    config = AutoConfig.from_pretrained(backbone)
    lengths = _batch_lengths(backbone, sentences, max_length, batch_size)
    rows = []
    for k in layers:
        flops = encode_flops(lengths, k, config.hidden_size, config.intermediate_size)
        path = paper_export(backbone, k, max_length, folder)
        add_onnx(path, calibration, "bench sentences outside the timed ones")

        def reference(path=path):
            model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True)
            return lambda x: model.encode(x, batch_size=batch_size, show_progress_bar=False)

        rows.append(_row(k, REFERENCE, reference, sentences, flops, peaks))
        for name, backend in BACKENDS.items():  # every registered backend, written above

            def served(name=name, path=path):
                return partial(load_student(path, name).encode, batch_size=batch_size)

            rows.append(_row(k, name, served, sentences, flops, peaks, backend.precision))
        depth = rows[-1 - len(BACKENDS) :]
        log.info("encode speed, %d layers: %s", k, [f"{r['sentences_per_s']:.0f}" for r in depth])
    return add_ratios(rows, layers[0])


def add_ratios(rows: list[dict], first_depth: int) -> list[dict]:
    """Each row's sentences/s over the same backend's at `first_depth` (`x_first_depth`), over the torch
    export's at its depth (`x_torch`) and over sentence-transformers' encode at its depth."""
    base = {r["backend"]: r["sentences_per_s"] for r in rows if r["layers"] == first_depth}
    reference = {r["layers"]: r["sentences_per_s"] for r in rows if r["backend"] == REFERENCE}
    torch_rate = {r["layers"]: r["sentences_per_s"] for r in rows if r["backend"] == DEFAULT}
    for r in rows:
        r["x_first_depth"] = r["sentences_per_s"] / base[r["backend"]]
        r["x_torch"] = r["sentences_per_s"] / torch_rate[r["layers"]]
        r["x_sentence_transformers"] = r["sentences_per_s"] / reference[r["layers"]]
    return rows
