"""A transformer student's sentence encoder (backbone, DSE pooling and projection, one graph) as ONNX,
fp32 and dynamically quantized to int8 by onnxruntime, run by onnxruntime on the CPU.

Why not sentence-transformers' own `backend="onnx"`: it loads through optimum-onnx, whose releases pin
transformers < 4.58, and this project runs on transformers 5 (the stack the committed results came from).
The quantization is the one `sentence_transformers.export_dynamic_quantized_onnx_model` asks optimum for
(onnxruntime's dynamic quantization: per-channel symmetric int8 weights, uint8 activations); the graph
also holds the DSE pooling, which optimum's feature-extraction export (last layer only) cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...embeddings.encode import EncodeFn
from .base import Backend, Writing

FP32 = "onnx/model.onnx"  # the traced graph: the int8 and OpenVINO graphs are made from it
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
Feed = Callable[[list[str]], dict]  # a batch of raw sentences -> {input name: int64 array}


class _Encoder(nn.Module):
    """A SentenceTransformer as a function of token tensors, the form torch.onnx.export traces."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        features = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        return self.model(features)["sentence_embedding"]


def feeder(tokenizer, max_length: int) -> Feed:
    """`feed(batch) -> {input: int64 array}`: a batch of raw sentences as the graphs' inputs."""

    def feed(batch: list[str]) -> dict:
        tok = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        return {k: tok[k] if k in tok else 0 * tok["input_ids"] for k in INPUTS}

    return feed


def writing_feed(writing: Writing) -> Feed:
    return feeder(writing.model.tokenizer, writing.spec["max_length"])


def fp32_graph(writing: Writing) -> Path:
    """The fp32 graph in the folder being written: traced there unless it already is (by `Onnx`)."""
    graph = writing.folder / FP32
    if graph.is_file():
        return graph
    tok = writing.model.tokenizer(["a sentence to trace", "another"], padding=True, return_tensors="pt")
    args = tuple(tok.get(k, torch.zeros_like(tok["input_ids"])) for k in INPUTS)
    graph.parent.mkdir(parents=True, exist_ok=True)
    axes = {k: {0: "batch", 1: "tokens"} for k in INPUTS} | {"sentence_embedding": {0: "batch"}}
    with torch.no_grad():  # the TorchScript exporter: it takes HF's BERT with dynamic lengths as is
        torch.onnx.export(
            _Encoder(writing.model).eval(),
            args,
            str(graph),
            input_names=list(INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return graph


class GraphEncoder:
    """Raw sentences -> (B, D) embeddings from a compiled graph: `run(feed) -> (B, D) array`."""

    def __init__(self, run: Callable[[dict], np.ndarray], feed: Feed) -> None:
        self.run, self.feed = run, feed

    @classmethod
    def of(cls, folder: Path, spec: dict, run: Callable[[dict], np.ndarray]) -> GraphEncoder:
        """With the export's own tokenizer and max length."""
        from transformers import AutoTokenizer

        return cls(run, feeder(AutoTokenizer.from_pretrained(folder), spec["max_length"]))

    def __call__(self, batch: list[str]) -> Tensor:
        return torch.from_numpy(self.run(self.feed(batch)))


def _onnxruntime(graph: Path) -> Callable[[dict], np.ndarray]:
    import onnxruntime as ort  # the int8 extra

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same threads as the torch path
    session = ort.InferenceSession(str(graph), options, ["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


class Onnx(Backend):
    name = "onnx"
    label = "ONNX fp32"
    marker = "D"
    file = FP32

    def write(self, writing: Writing) -> None:
        (writing.folder / FP32).unlink(missing_ok=True)  # traced again from the export as it is
        fp32_graph(writing)

    def load(self, folder: Path, spec: dict, device: str) -> EncodeFn:
        return GraphEncoder.of(folder, spec, _onnxruntime(folder / self.file))


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
