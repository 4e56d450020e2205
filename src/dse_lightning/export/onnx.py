"""int8 CPU inference for a transformer student's export: its sentence encoder (backbone, DSE pooling and
projection, one graph) as ONNX, dynamically quantized to int8 by onnxruntime, and (given calibration
sentences) as OpenVINO fp32 and static int8 graphs (openvino.py), saved inside the export and covered by
its manifest; `load_student(path, backend="onnx-int8")` (or "openvino-int8") encodes with them.

Why not sentence-transformers' own `backend="onnx"`: it loads through optimum-onnx, whose releases pin
transformers < 4.58, and this project runs on transformers 5 (the stack the committed results came from).
The quantization is the one `sentence_transformers.export_dynamic_quantized_onnx_model` asks optimum for
(onnxruntime's dynamic quantization: per-channel symmetric int8 weights, uint8 activations); the graph
also holds the DSE pooling, which optimum's feature-extraction export (last layer only) cannot.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from torch import Tensor, nn

from ..scoring.store import sentences_checksum
from ..store import publish
from . import openvino
from .student_io import KIND, verify_export

log = logging.getLogger(__name__)
FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_qint8.onnx", **openvino.FILES}
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def _feeder(tokenizer, max_length: int):
    """`feed(batch) -> {input: int64 array}`: a batch of raw sentences as the graphs' inputs."""

    def feed(batch: list[str]) -> dict:
        tok = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        return {k: tok[k] if k in tok else 0 * tok["input_ids"] for k in INPUTS}

    return feed


def _write(model, folder: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tok = model.tokenizer(["a sentence to trace", "another"], padding=True, return_tensors="pt")
    args = tuple(tok.get(k, torch.zeros_like(tok["input_ids"])) for k in INPUTS)
    fp32, int8 = folder / FILES["onnx"], folder / FILES["onnx-int8"]
    fp32.parent.mkdir(parents=True, exist_ok=True)
    axes = {k: {0: "batch", 1: "tokens"} for k in INPUTS} | {"sentence_embedding": {0: "batch"}}
    with torch.no_grad():  # the TorchScript exporter: it takes HF's BERT with dynamic lengths as is
        torch.onnx.export(
            _Encoder(model).eval(),
            args,
            str(fp32),
            input_names=list(INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(
        fp32, int8, weight_type=QuantType.QInt8, per_channel=True, extra_options={"WeightSymmetric": True}
    )


def add_onnx(path: str | Path, calibration: list[str] | None = None, calibration_source: str = "") -> dict:
    """Add the fp32 and int8 ONNX encoders to a transformer student's export (a new version of the
    artifact, written atomically), and the OpenVINO fp32 and static int8 ones when `calibration`
    sentences are given (`calibration_source` says where they came from); the export's spec afterwards."""
    from sentence_transformers import SentenceTransformer

    path = Path(path)
    spec = verify_export(path)
    if not spec["encoder"]["_target_"].endswith("TransformerEncoder"):
        raise ValueError(f"{path}: ONNX export is for transformer students; this one is {spec['encoder']}")
    model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True).eval()

    def write(tmp: Path) -> dict:
        shutil.copytree(path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("manifest.json"))
        _write(model, tmp)
        # OpenVINO graphs added before stay (the same weights) unless new calibration replaces them
        graphs = spec.get("onnx", {}) | {k: v for k, v in FILES.items() if k.startswith("onnx")}
        if not calibration:
            return {**spec, "onnx": graphs}
        feed = _feeder(model.tokenizer, spec["max_length"])
        openvino.write_openvino(tmp, tmp / FILES["onnx"], feed, calibration)
        sample = {"source": calibration_source, "sentences": len(calibration)}
        return {**spec, "onnx": FILES, "calibration": sample | {"sha256": sentences_checksum(calibration)}}

    log.info("writing the fp32 and int8 graph encoders into %s", path)
    return publish(path, KIND, write, writer=True).meta


def _onnxruntime(graph: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same threads as the torch path
    session = ort.InferenceSession(str(graph), options, ["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


class GraphEncoder:
    """Raw sentences -> (B, D) embeddings from one of an export's graphs: onnxruntime runs the ONNX
    ones, OpenVINO its own."""

    def __init__(self, folder: Path, backend: str, max_length: int) -> None:
        from transformers import AutoTokenizer

        compile_graph = openvino.compile_openvino if backend.startswith("openvino") else _onnxruntime
        self.run = compile_graph(folder / FILES[backend])
        self.feed = _feeder(AutoTokenizer.from_pretrained(folder), max_length)

    def __call__(self, batch: list[str]) -> Tensor:
        return torch.from_numpy(self.run(self.feed(batch)))


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        description="Add fp32 and int8 ONNX (and OpenVINO) encoders to a transformer student's export"
    )
    p.add_argument("export", type=Path, help="a student export folder (<run>/student/export)")
    p.add_argument(
        "--openvino",
        metavar="TASK",
        help="also the OpenVINO fp32 and static int8 graphs, calibrated on TASK's train sentences "
        "(task/TASK.yaml: the package's or $DSE_CONFIG_DIR's)",
    )
    p.add_argument(
        "--calibration-size", type=int, default=openvino.CALIBRATION_SIZE, help="sentences sampled (seed 0)"
    )
    p.add_argument("--data-dir", default=None, help="a glue_data folder (default: as data.dir resolves)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sentences, source = None, ""
    if args.openvino:
        sentences = openvino.calibration_sentences(args.openvino, args.data_dir, args.calibration_size)
        source = openvino.calibration_source(args.openvino)
    print(add_onnx(args.export, sentences, source)["onnx"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
