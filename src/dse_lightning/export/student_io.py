"""Export a trained SiameseStudent and load it back for encoding and scoring.

An export is an artifact folder (store.py): the encoder's own files (a sentence-transformers model for a
transformer encoder; weights and tokenizer for the BiLSTM), `head.safetensors` (a multi-task student:
`heads/<task>.safetensors`, one per task), and the manifest, whose meta records the task (name, type,
labels; a multi-task student: per task, under `tasks`), the max length and the specs the encoder and head
rebuild from.
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
from ..models.components.student import MultiTaskStudent, SiameseStudent
from ..store import publish
from .backends import DEFAULT, Backend, get_backend, verify_served

KIND = "student export"
HEADS = "heads"  # a multi-task export's folder of heads, one <task>.safetensors each


def export_student(
    path: str | Path,
    student: SiameseStudent | MultiTaskStudent,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec | dict[str, TaskSpec],
    max_length: int,
    card: str | None = None,
) -> Path:
    """Write `student` to `path` atomically; `card` (export/card.py) becomes its README.md. A multi-task
    student (`task`: name -> TaskSpec) writes one head per task, `heads/<task>.safetensors`, and its
    manifest lists them under `tasks`."""

    def write(tmp: Path) -> dict:
        if isinstance(task, TaskSpec):
            spec = _save_head(student.head, task, tmp / "head.safetensors")
        else:
            spec = {
                "tasks": {
                    n: _save_head(student.heads[n], t, tmp / HEADS / f"{n}.safetensors")
                    for n, t in task.items()
                }
            }
        encoder = student.encoder.export(tmp, tokenizer, max_length)
        if card is not None:  # in place of sentence-transformers' generic card
            (tmp / "README.md").write_text(card)
        return {**spec, "max_length": max_length, "encoder": encoder}

    return publish(path, KIND, write, writer=True).path


def _save_head(head: PairHead, task: TaskSpec, path: Path) -> dict:
    """Save one head's weights; what rebuilds it: its task (name, type, labels) and its spec."""
    path.parent.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, path)
    return {"task": task.name, "task_type": task.type, "labels": task.labels, "head": head.spec()}


def verify_export(path: str | Path, remedy: str | None = None, serving: Backend | None = None) -> dict:
    """The export's spec after checking its files against its manifest: every file but the graphs of
    the backends other than `serving` (None: but every graph), so that one bad graph makes only its own
    backend refuse."""
    remedy = remedy or "export it again (rerun the training command) or restore the folder from a copy"
    return verify_served(path, KIND, remedy, serving)


class ExportedStudent:
    """`encode(sentences) -> (N, D)`; `score(a, b) -> (N,)` P(positive) / score, or (N, C) class probs.

    A multi-task export holds one student per task (`tasks`), sharing its encoder: `score(a, b, task=...)`,
    or `for_task(name)`, the one-task view the scorers and stores take."""

    def __init__(
        self,
        spec: dict,
        head: PairHead | None,
        encode_fn: EncodeFn,
        tasks: dict[str, ExportedStudent] | None = None,
    ) -> None:
        self.spec, self._encode, self.tasks = spec, encode_fn, tasks or {}
        self.head = head.eval() if head is not None else None
        self.kind = TASK_KINDS[spec["task_type"]] if head is not None else None

    def for_task(self, task: str | None = None) -> ExportedStudent:
        """The student of `task`: a multi-task export's head for it; a one-task export itself (None, or
        the task it was trained on)."""
        if self.tasks:
            if task in self.tasks:
                return self.tasks[task]
            asked = "name one with task=" if task is None else f"not {task!r}"
            raise ValueError(f"this student has a head per task ({', '.join(self.tasks)}): {asked}")
        if task is None or task == self.spec.get("task", task):
            return self
        raise ValueError(f"this student has one head, for {self.spec['task']}; not {task!r}")

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
        self,
        sentences_a: list[str],
        sentences_b: list[str],
        batch_size: int = 64,
        progress: bool = False,
        task: str | None = None,
    ) -> torch.Tensor:
        """The head's raw outputs for pairs (a_i, b_i): what the task's metrics read."""
        head = self.for_task(task).head
        a = self.encode(sentences_a, batch_size, progress)
        return head(a, self.encode(sentences_b, batch_size, progress))

    def score(
        self,
        sentences_a: list[str],
        sentences_b: list[str],
        batch_size: int = 64,
        progress: bool = False,
        task: str | None = None,
    ) -> torch.Tensor:
        kind = self.for_task(task).kind
        return kind.scores(self.logits(sentences_a, sentences_b, batch_size, progress, task))


def load_student(path: str | Path, backend: str = DEFAULT, device: str = "cpu") -> ExportedStudent:
    """backend: a name in the registry (export/backends/): torch (the exported encoder as trained), onnx or
    onnx-int8 (its ONNX graphs, fp32 or dynamically quantized int8, run by onnxruntime on the CPU; `python
    -m dse_lightning.export.onnx EXPORT` adds them), openvino or openvino-int8 (OpenVINO fp32 and static
    int8 graphs; the same command with `--openvino TASK` adds them). device: where the torch encoder runs
    (its embeddings come back there; the graph backends run on the CPU)."""
    path = Path(path)
    serving = get_backend(backend)
    spec = verify_export(path, serving=serving)
    if not serving.present(spec):
        raise FileNotFoundError(serving.missing(path))
    encode = serving.load(path, spec, device)
    if "tasks" not in spec:
        return ExportedStudent(spec, _load_head(spec, path / "head.safetensors"), encode)
    shared = {k: v for k, v in spec.items() if k != "tasks"}
    tasks = {
        name: ExportedStudent(
            {**shared, **one}, _load_head(one, path / HEADS / f"{name}.safetensors"), encode
        )
        for name, one in spec["tasks"].items()
    }
    return ExportedStudent(spec, None, encode, tasks)


def _load_head(spec: dict, path: Path) -> PairHead:
    head = PairHead.from_spec(spec["head"])
    head.load_state_dict(load_file(path))
    return head
