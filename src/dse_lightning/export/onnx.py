"""int8 CPU inference for a transformer student's export: its sentence encoder (backbone, DSE pooling and
projection, one graph) as ONNX, dynamically quantized to int8 by onnxruntime, saved inside the export and
covered by its manifest; `load_student(path, backend="onnx-int8")` encodes with onnxruntime.

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

from ..store import publish
from .student_io import KIND, verify_export

log = logging.getLogger(__name__)
FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_qint8.onnx"}
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


def add_onnx(path: str | Path) -> dict:
    """Add the fp32 and int8 ONNX encoders to a transformer student's export (a new version of the
    artifact, written atomically); the export's spec afterwards."""
    from sentence_transformers import SentenceTransformer

    path = Path(path)
    spec = verify_export(path)
    if not spec["encoder"]["_target_"].endswith("TransformerEncoder"):
        raise ValueError(f"{path}: ONNX export is for transformer students; this one is {spec['encoder']}")
    model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True).eval()

    def write(tmp: Path) -> dict:
        shutil.copytree(path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("manifest.json"))
        _write(model, tmp)
        return {**spec, "onnx": FILES}

    log.info("writing the ONNX fp32 and int8 encoders into %s", path)
    return publish(path, KIND, write, writer=True).meta


class OnnxEncoder:
    """Raw sentences -> (B, D) embeddings from an export's ONNX encoder, run by onnxruntime."""

    def __init__(self, folder: Path, backend: str, max_length: int) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads as the torch path
        self.session = ort.InferenceSession(str(folder / FILES[backend]), options, ["CPUExecutionProvider"])
        self.tokenizer, self.max_length = AutoTokenizer.from_pretrained(folder), max_length
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: list[str]) -> Tensor:
        tok = self.tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feed = {k: tok[k] if k in tok else 0 * tok["input_ids"] for k in self.inputs}
        return torch.from_numpy(self.session.run(None, feed)[0])


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        description="Add fp32 and int8 ONNX encoders to a transformer student's export"
    )
    p.add_argument("export", type=Path, help="a student export folder (<run>/student/export)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(add_onnx(args.export)["onnx"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
