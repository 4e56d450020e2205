"""A transformer student's sentence encoder (backbone, DSE pooling and projection, one graph), or a
cross-encoder's pair classifier (export/cross_encoder.py), as ONNX, fp32 and dynamically quantized to int8
by onnxruntime, run by onnxruntime on the CPU.

Why not sentence-transformers' own `backend="onnx"`: it loads through optimum-onnx, whose releases pin
transformers < 4.58, and this project runs on transformers 5 (the stack the committed results came from).
The quantization is the one `sentence_transformers.export_dynamic_quantized_onnx_model` asks optimum for
(onnxruntime's dynamic quantization: per-channel symmetric int8 weights, uint8 activations); the graph
also holds the DSE pooling, which optimum's feature-extraction export (last layer only) cannot.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import INPUTS, GraphBackend, Run, Writing

FP32 = "onnx/model.onnx"  # the traced graph: the int8 and OpenVINO graphs are made from it


def fp32_graph(writing: Writing) -> Path:
    """The fp32 graph in the folder being written: traced there unless it already is (by `Onnx`)."""
    graph = writing.folder / FP32
    if graph.is_file():
        return graph
    example = [("a sentence to trace", "and its pair"), ("another", "one more")]
    feed = writing.feed()(example if writing.pairs else [a for a, _ in example])
    args = tuple(torch.from_numpy(feed[k]) for k in INPUTS)
    graph.parent.mkdir(parents=True, exist_ok=True)
    axes = {k: {0: "batch", 1: "tokens"} for k in INPUTS} | {writing.output: {0: "batch"}}
    with torch.no_grad():  # the TorchScript exporter: it takes HF's BERT with dynamic lengths as is
        torch.onnx.export(
            writing.module().eval(),
            args,
            str(graph),
            input_names=list(INPUTS),
            output_names=[writing.output],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return graph


def _onnxruntime(graph: Path) -> Run:
    import onnxruntime as ort  # the int8 extra

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same threads as the torch path
    session = ort.InferenceSession(str(graph), options, ["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


class Onnx(GraphBackend):
    name = "onnx"
    label = "ONNX fp32"
    marker = "D"
    file = FP32

    def write(self, writing: Writing) -> None:
        (writing.folder / FP32).unlink(missing_ok=True)  # traced again from the export as it is
        fp32_graph(writing)

    def compile(self, graph: Path) -> Run:
        return _onnxruntime(graph)


class OnnxInt8(Onnx):
    name = "onnx-int8"
    label = "ONNX int8 (dynamic)"
    marker = "s"
    precision = "int8"
    file = "onnx/model_qint8.onnx"

    def write(self, writing: Writing) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            fp32_graph(writing),
            writing.folder / self.file,
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"WeightSymmetric": True},
        )
