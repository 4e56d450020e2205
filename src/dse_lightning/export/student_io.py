"""Export a trained SiameseStudent and load it back for encoding and scoring.

An export is an artifact folder (store.py): the encoder's own files (a sentence-transformers model for a
transformer encoder; weights and tokenizer for the BiLSTM), `head.safetensors`, and the manifest, whose
meta records the task (type, labels), the max length and the specs the encoder and head rebuild from.
`load_student` checks every file against the manifest first.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from ..data.task_kinds import TASK_KINDS
from ..data.tasks import TaskSpec
from ..embeddings.encode import EncodeFn, encode_corpus
from ..models.components.heads import PairHead
from ..models.components.student import SiameseStudent
from ..store import publish
from .backends import DEFAULT, Backend, get_backend, verify_served

KIND = "student export"


def export_student(
    path: str | Path,
    student: SiameseStudent,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    max_length: int,
    card: str | None = None,
) -> Path:
    """Write `student` to `path` atomically; `card` (export/card.py) becomes its README.md."""

    def write(tmp: Path) -> dict:
        save_file({k: v.contiguous() for k, v in student.head.state_dict().items()}, tmp / "head.safetensors")
        encoder = student.encoder.export(tmp, tokenizer, max_length)
        if card is not None:  # in place of sentence-transformers' generic card
            (tmp / "README.md").write_text(card)
        spec = {"task_type": task.type, "labels": task.labels, "max_length": max_length}
        return {**spec, "head": student.head.spec(), "encoder": encoder}

    return publish(path, KIND, write, writer=True).path


def verify_export(path: str | Path, remedy: str | None = None, serving: Backend | None = None) -> dict:
    """The export's spec after checking its files against its manifest: every file but the graphs of
    the backends other than `serving` (None: but every graph), so that one bad graph makes only its own
    backend refuse."""
    remedy = remedy or "export it again (rerun the training command) or restore the folder from a copy"
    return verify_served(path, KIND, remedy, serving)


class ExportedStudent:
    """`encode(sentences) -> (N, D)`; `score(a, b) -> (N,)` P(positive) / score, or (N, C) class probs."""

    def __init__(self, spec: dict, head: PairHead, encode_fn: EncodeFn) -> None:
        self.spec, self.head, self._encode = spec, head.eval(), encode_fn
        self.kind = TASK_KINDS[spec["task_type"]]

    @torch.inference_mode()
    def encode_batch(self, batch: list[str]) -> torch.Tensor:
        """(B, D) for one batch as given: for callers that batch themselves (`encode_corpus`)."""
        return self._encode(batch)

    @torch.inference_mode()
    def encode(self, sentences: list[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """(N, D), row i for sentence i; encoded in length-sorted batches, each distinct sentence once
        (input-order batches ran at 0.80x sentence-transformers' own encode, which sorts too)."""
        return encode_corpus(self._encode, sentences, batch_size, progress=progress)

    @torch.inference_mode()
    def logits(
        self, sentences_a: list[str], sentences_b: list[str], batch_size: int = 64, progress: bool = False
    ) -> torch.Tensor:
        """The head's raw outputs for pairs (a_i, b_i): what the task's metrics read."""
        a = self.encode(sentences_a, batch_size, progress)
        return self.head(a, self.encode(sentences_b, batch_size, progress))

    def score(
        self, sentences_a: list[str], sentences_b: list[str], batch_size: int = 64, progress: bool = False
    ) -> torch.Tensor:
        return self.kind.scores(self.logits(sentences_a, sentences_b, batch_size, progress))


def load_student(path: str | Path, backend: str = DEFAULT, device: str = "cpu") -> ExportedStudent:
    """backend: a name in the registry (export/backends/): torch (the exported encoder as trained), onnx or
    onnx-int8 (its ONNX graphs, fp32 or dynamically quantized int8, run by onnxruntime on the CPU; `python
    -m dse_lightning.export.onnx EXPORT` adds them), openvino or openvino-int8 (OpenVINO fp32 and static
    int8 graphs; the same command with `--openvino TASK` adds them). device: where the torch encoder runs
    (its embeddings come back there; the graph backends run on the CPU)."""
    path = Path(path)
    serving = get_backend(backend)
    spec = verify_export(path, serving=serving)
    head = PairHead.from_spec(spec["head"])
    head.load_state_dict(load_file(path / "head.safetensors"))
    if not serving.present(spec):
        raise FileNotFoundError(serving.missing(path))
    return ExportedStudent(spec, head, serving.load(path, spec, device))
