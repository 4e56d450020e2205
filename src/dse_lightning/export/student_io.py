"""Export a trained SiameseStudent and load it back for encoding and scoring.

An export is an artifact folder (store.py): the encoder's own files (a sentence-transformers model for a
transformer encoder; weights and tokenizer for the BiLSTM), `head.safetensors`, and the manifest, whose
meta records the task (type, labels), the max length and the specs the encoder and head rebuild from.
`load_student` checks every file against the manifest first.
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from ..data.task_kinds import TASK_KINDS
from ..data.tasks import TaskSpec
from ..models.components.encoders import EncodeFn
from ..models.components.heads import PairHead
from ..models.components.student import SiameseStudent
from ..store import publish, verify

KIND = "student export"


def export_student(
    path: str | Path,
    student: SiameseStudent,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    max_length: int,
) -> Path:
    """Write `student` to `path` atomically."""

    def write(tmp: Path) -> dict:
        save_file({k: v.contiguous() for k, v in student.head.state_dict().items()}, tmp / "head.safetensors")
        encoder = student.encoder.export(tmp, tokenizer, max_length)
        spec = {"task_type": task.type, "labels": task.labels, "max_length": max_length}
        return {**spec, "head": student.head.spec(), "encoder": encoder}

    return publish(path, KIND, write, writer=True).path


def verify_export(path: str | Path, remedy: str | None = None) -> dict:
    """The export's spec after checking every file against its manifest."""
    remedy = remedy or "export it again (rerun the training command) or restore the folder from a copy"
    return verify(path, KIND, remedy)


class ExportedStudent:
    """`encode(sentences) -> (N, D)`; `score(a, b) -> (N,)` P(positive) / score, or (N, C) class probs."""

    def __init__(self, spec: dict, head: PairHead, encode_fn: EncodeFn) -> None:
        self.spec, self.head, self._encode = spec, head.eval(), encode_fn
        self.kind = TASK_KINDS[spec["task_type"]]

    @torch.inference_mode()
    def encode(self, sentences: list[str], batch_size: int = 64) -> torch.Tensor:
        return torch.cat(
            [self._encode(sentences[i : i + batch_size]) for i in range(0, len(sentences), batch_size)]
        )

    @torch.inference_mode()
    def score(self, sentences_a: list[str], sentences_b: list[str], batch_size: int = 64) -> torch.Tensor:
        return self.kind.scores(
            self.head(self.encode(sentences_a, batch_size), self.encode(sentences_b, batch_size))
        )


def load_student(path: str | Path) -> ExportedStudent:
    path = Path(path)
    spec = verify_export(path)
    head = PairHead.from_spec(spec["head"])
    head.load_state_dict(load_file(path / "head.safetensors"))
    encoder = get_class(spec["encoder"]["_target_"])
    return ExportedStudent(spec, head, encoder.load_export(path, spec["encoder"], spec["max_length"]))
