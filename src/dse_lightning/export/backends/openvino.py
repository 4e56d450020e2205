"""OpenVINO fp32 and static int8 graphs of a transformer student's export (or a cross-encoder's), from its
ONNX graph.

Why static int8 beside onnxruntime's dynamic int8: a dynamic graph measures each batch's activation range
and quantizes it at run time, on every MatMul; a static one reads ranges fixed by calibration, so only the
int8 GEMMs are left. The sentence-transformers docs measured OpenVINO static int8 at 4.78x fp32 against
2.34x for ONNX dynamic int8. The quantization is NNCF's post-training `quantize` for transformers
(SmoothQuant, softmax and layer norms kept in float: what `export_static_quantized_openvino_model` asks
optimum-intel for), calibrated on a seeded sample of the export's task's train sentences (a
cross-encoder: train pairs; export/calibration.py); the sample is recorded in the export's meta. Both
graphs run with fp32 precision for what is not int8: OpenVINO would otherwise pick bf16 on a CPU with
native bf16, and "fp32" would not mean fp32.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import GraphBackend, Run, Writing
from .onnx import fp32_graph

CALIBRATION_BATCH = 32


def _save(model, path: Path) -> None:
    import openvino as ov  # the int8 extra

    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=False)


def compile_openvino(graph: Path) -> Run:
    """`run(feed) -> ndarray`: the IR compiled for the CPU with the torch path's threads, fp32 precision."""
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    request = ov.Core().compile_model(str(graph), "CPU", config).create_infer_request()
    return lambda feed: request.infer(feed)[0].copy()  # the request reuses its output buffer


class OpenVino(GraphBackend):
    """The fp32 IR of the export's ONNX graph (written with the int8 one, when calibrating)."""

    name = "openvino"
    label = "OpenVINO fp32"
    marker = "v"
    file = "openvino/openvino_model.xml"
    with_calibration = True

    def write(self, writing: Writing) -> None:
        import openvino as ov

        _save(ov.convert_model(str(fp32_graph(writing))), writing.folder / self.file)

    def compile(self, graph: Path) -> Run:
        return compile_openvino(graph)


class OpenVinoInt8(OpenVino):
    """NNCF's static int8 quantization of the fp32 IR, calibrated on `writing.calibration`."""

    name = "openvino-int8"
    label = "OpenVINO int8 (static)"
    marker = "^"
    precision = "int8"
    file = "openvino/openvino_model_qint8_quantized.xml"

    def write(self, writing: Writing) -> None:
        import nncf
        import openvino as ov

        if not writing.calibration:
            raise ValueError(f"{self.name}: static int8 needs calibration sentences (--openvino TASK)")
        feed, inputs = writing.feed(), writing.calibration  # sentences, or a cross-encoder's pairs
        batches = [feed(inputs[i : i + CALIBRATION_BATCH]) for i in range(0, len(inputs), CALIBRATION_BATCH)]
        quantized = nncf.quantize(
            ov.convert_model(str(fp32_graph(writing))),
            nncf.Dataset(batches),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(batches),
        )
        _save(quantized, writing.folder / self.file)
