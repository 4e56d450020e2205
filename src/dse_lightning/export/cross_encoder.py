"""Export a teacher as a sentence-transformers `CrossEncoder` folder: `CrossEncoder(path).predict(pairs)`
gives the teacher's raw logits, in a Python without dse_lightning.

Two settings make its predictions the teacher's: the max length (saved as the tokenizer's
`model_max_length`; sentence-transformers truncates pairs longest-first, as our pair view does) and the
activation, saved as `torch.nn.Identity` in `config_sentence_transformers.json` (a one-output model would
otherwise get a Sigmoid in `predict`; a `torch.` path loads without `trust_remote_code`).
The folder is an artifact (store.py): its manifest's meta records the task and the max length.

Like a student's export it takes the serving backends' graphs (`python -m dse_lightning.export.onnx
FOLDER [--openvino TASK]`: ONNX fp32 and int8, OpenVINO fp32 and static int8, traced from the sequence
classifier with pairs in and logits out), and `load_cross_encoder(path, backend)` serves any of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..data.tasks import TaskSpec
from ..store import manifest_kind, publish
from .backends import DEFAULT, GraphBackend, Writing, get_backend, verify_served
from .backends.base import feeder

KIND = "cross-encoder export"
REMEDY = "export the teacher again (rerun its training command) or restore the folder from a copy"
PredictFn = Callable[[list[tuple[str, str]]], Tensor]  # a batch of pairs -> (B, C) logits


def export_cross_encoder(
    path: str | Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    max_length: int,
    card: str | None = None,
) -> Path:
    """Write the sequence classifier `model` (a TeacherModule's `.model`) to `path` atomically, from this
    process; `card` (export/card.py) becomes its README.md."""
    from sentence_transformers import CrossEncoder  # seconds to import: only when writing

    def write(tmp: Path) -> dict:
        staged = tmp / ".model"  # CrossEncoder loads a folder; it saves its own copy into tmp
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        ce = CrossEncoder(
            str(staged),
            max_length=max_length,
            activation_fn=nn.Identity(),
            device="cpu",
            local_files_only=True,
        )
        if len(task.labels) == task.num_labels:  # class logits: name them (a regression has one output)
            ce.model.config.id2label = dict(enumerate(task.labels))
            ce.model.config.label2id = {label: i for i, label in enumerate(task.labels)}
        ce.save(str(tmp))
        shutil.rmtree(staged)
        if card is not None:  # in place of sentence-transformers' generic card
            (tmp / "README.md").write_text(card)
        return {"task_type": task.type, "labels": task.labels, "max_length": max_length}

    return publish(path, KIND, write, writer=True).path


def is_cross_encoder(path: str | Path) -> bool:
    """Whether `path` is a teacher's CrossEncoder export (else: a student's, or an error later)."""
    return manifest_kind(Path(path)) == KIND


class _Logits(nn.Module):
    """A sequence classifier as a function of token tensors (what torch.onnx.export traces): its logits."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits


class PairWriting(Writing):
    """Graphs of a cross-encoder export: traced from its sequence classifier, pairs in, logits out;
    static int8 calibrated on sentence pairs."""

    pairs = True
    output = "logits"

    @cached_property
    def model(self) -> PreTrainedModel:
        return AutoModelForSequenceClassification.from_pretrained(self.source).eval()

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.source)

    def module(self) -> nn.Module:
        return _Logits(self.model)


class ExportedCrossEncoder:
    """`logits(a, b) -> (N, C)`: an exported teacher's raw outputs for the pairs (a_i, b_i), as one backend
    serves them; what the task's metrics read and what a teacher's logits are."""

    def __init__(self, spec: dict, predict: PredictFn) -> None:
        self.spec, self.predict = spec, predict

    @torch.inference_mode()
    def logits(
        self, sentences_a: list[str], sentences_b: list[str], batch_size: int = 64, progress: bool = False
    ) -> Tensor:
        """In batches of similar length (characters of both sides: little padding), back in pair order."""
        pairs = list(zip(sentences_a, sentences_b, strict=True))
        if not pairs:
            raise ValueError("ExportedCrossEncoder.logits: no pairs")
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        starts = range(0, len(order), batch_size)
        blocks = [
            self.predict([pairs[i] for i in order[s : s + batch_size]]).float()
            for s in tqdm(starts, desc="cross-encode", unit="batch", disable=not progress)
        ]
        out = torch.empty_like(sorted_logits := torch.cat(blocks))
        out[torch.tensor(order)] = sorted_logits
        return out


def load_cross_encoder(path: str | Path, backend: str = DEFAULT) -> ExportedCrossEncoder:
    """A CrossEncoder export as `backend` serves it (its files verified): torch (the classifier as
    trained) or a graph backend (`python -m dse_lightning.export.onnx PATH [--openvino TASK]` adds them)."""
    path, serving = Path(path), get_backend(backend)
    spec = verify_served(path, KIND, REMEDY, serving)
    if not serving.present(spec):
        raise FileNotFoundError(serving.missing(path))
    feed = feeder(AutoTokenizer.from_pretrained(path), spec["max_length"], pairs=True)
    if isinstance(serving, GraphBackend):
        run = serving.compile(path / serving.file)
        return ExportedCrossEncoder(spec, lambda batch: torch.from_numpy(run(feed(batch))))
    if serving.name != DEFAULT:
        raise ValueError(f"backend={backend!r} serves student exports only, not {path} (a {KIND})")
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    return ExportedCrossEncoder(
        spec, lambda batch: model(**{k: torch.from_numpy(v) for k, v in feed(batch).items()}).logits
    )
