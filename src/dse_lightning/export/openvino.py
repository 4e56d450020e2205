"""OpenVINO fp32 and static int8 encoders for a transformer student's export, from its ONNX graph.

Why static int8 beside onnxruntime's dynamic int8: a dynamic graph measures each batch's activation range
and quantizes it at run time, on every MatMul; a static one reads ranges fixed by calibration, so only the
int8 GEMMs are left. The sentence-transformers docs measured OpenVINO static int8 at 4.78x fp32 against
2.34x for ONNX dynamic int8. The quantization is NNCF's post-training `quantize` for transformers
(SmoothQuant, softmax and layer norms kept in float: what `export_static_quantized_openvino_model` asks
optimum-intel for), calibrated on a seeded sample of the export's task's train sentences; the sample is
recorded in the export's meta. Both graphs run with fp32 precision for what is not int8: OpenVINO would
otherwise pick bf16 on a CPU with native bf16, and "fp32" would not mean fp32.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ..config import load_task
from ..data.sources import resolve_source

FILES = {
    "openvino": "openvino/openvino_model.xml",
    "openvino-int8": "openvino/openvino_model_qint8_quantized.xml",
}
CALIBRATION_BATCH = 32
CALIBRATION_SIZE = 300  # sentences sampled for calibration (NNCF's default subset is 300 samples)


def sample_calibration(sentences: list[str], n: int = CALIBRATION_SIZE, seed: int = 0) -> list[str]:
    """A seeded sample of `n` of `sentences` (all of them when there are fewer)."""
    return random.Random(seed).sample(sentences, min(n, len(sentences)))


def calibration_sentences(
    task: str, data_dir: str | None = None, n: int = CALIBRATION_SIZE, seed: int = 0
) -> list[str]:
    """A seeded sample of `n` distinct sentences of the task's train split (both sides of its pairs)."""
    rows = resolve_source(load_task(task), data_dir).load("train")
    return sample_calibration(sorted(set(rows["sentence1"]) | set(rows["sentence2"])), n, seed)


def calibration_source(task: str, seed: int = 0) -> str:
    """How the export's meta names a `calibration_sentences(task, seed=seed)` sample."""
    return f"{task}/train, seed {seed}"


def write_openvino(folder: Path, onnx_file: Path, feed, calibration: list[str]) -> None:
    """The fp32 IR of `onnx_file` and its NNCF static int8 quantization into `folder`; `feed(batch)`
    tokenizes a batch into the graph's inputs."""
    import nncf
    import openvino as ov

    model = ov.convert_model(str(onnx_file))
    fp32, int8 = folder / FILES["openvino"], folder / FILES["openvino-int8"]
    fp32.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(fp32), compress_to_fp16=False)
    batches = [
        feed(calibration[i : i + CALIBRATION_BATCH]) for i in range(0, len(calibration), CALIBRATION_BATCH)
    ]
    quantized = nncf.quantize(
        model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches)
    )
    ov.save_model(quantized, str(int8), compress_to_fp16=False)


def compile_openvino(graph: Path):
    """`run(feed) -> ndarray`: the IR compiled for the CPU with the torch path's threads, fp32 precision."""
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    request = ov.Core().compile_model(str(graph), "CPU", config).create_infer_request()
    return lambda feed: request.infer(feed)[0].copy()  # the request reuses its output buffer
