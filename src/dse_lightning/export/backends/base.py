"""The serving-backend interface: what one way of running an export's encoder declares and does.

A backend has a name (the `backend=` option of `load_student`, `score`, `build_store`, `export.evaluate`),
a label and a plot marker for reports, the precision of its GEMMs (the peak the bench reads its rows
against), the file it adds to an export (None: it serves the export's own files), how that file is
written (`write`), whether an export has it (`present`) and how it loads into an encode function
(`load`). The registry (`__init__.py`) lists them; nothing else names a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...embeddings.encode import EncodeFn

# The export meta's {backend name: its file} for the backends that add files; named when ONNX was the
# only one, kept so that exports written since then still load.
GRAPHS = "onnx"


INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # every graph's inputs, int64 (batch, tokens)
Run = Callable[[dict], np.ndarray]  # a compiled graph: {input name: int64 array} -> its first output
Feed = Callable[[list], dict]  # a batch of sentences (or of sentence pairs) -> {input name: int64 array}


def feeder(tokenizer, max_length: int, pairs: bool = False) -> Feed:
    """`feed(batch) -> {input: int64 array}`: a batch of raw sentences, or of (a, b) pairs (truncated
    longest-first, as the teacher's pair view), as the graphs' inputs."""

    def feed(batch: list) -> dict:
        texts = tuple(map(list, zip(*batch, strict=True))) if pairs else (batch,)
        tok = tokenizer(*texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        return {k: tok[k] if k in tok else 0 * tok["input_ids"] for k in INPUTS}

    return feed


class GraphEncoder:
    """Raw sentences -> (B, D) embeddings from a compiled graph: `run(feed) -> (B, D) array`."""

    def __init__(self, run: Run, feed: Feed) -> None:
        self.run, self.feed = run, feed

    @classmethod
    def of(cls, folder: Path, spec: dict, run: Run) -> GraphEncoder:
        """With the export's own tokenizer and max length."""
        from transformers import AutoTokenizer

        return cls(run, feeder(AutoTokenizer.from_pretrained(folder), spec["max_length"]))

    def __call__(self, batch: list[str]) -> Tensor:
        return torch.from_numpy(self.run(self.feed(batch)))


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


@dataclass
class Writing:
    """What a backend's files are written from: the export (`source`, as published), the new version of
    it being written (`folder`: a copy of its files and of the backends written before this one), its
    spec, and the calibration inputs when given (sentences; a cross-encoder's: sentence pairs).

    This one writes a student's sentence encoder; export/cross_encoder.py's `PairWriting` a cross-encoder.
    """

    source: Path
    folder: Path
    spec: dict
    calibration: list | None = None
    pairs = False  # the graph reads sentence pairs (a cross-encoder), not single sentences
    output = "sentence_embedding"  # the graph's output

    @cached_property
    def model(self):
        """The export as a SentenceTransformer on the CPU: what graphs are traced from."""
        from sentence_transformers import SentenceTransformer  # seconds to import: only when writing

        return SentenceTransformer(str(self.source), device="cpu", trust_remote_code=True).eval()

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def module(self) -> nn.Module:
        """The model as a function of the `INPUTS` tensors: what is traced."""
        return _Encoder(self.model)

    def feed(self) -> Feed:
        return feeder(self.tokenizer, self.spec["max_length"], self.pairs)


class Backend(ABC):
    """One way to serve an export's encoder: see the module doc."""

    name: str = ""  # the `backend=` option, e.g. "onnx-int8"
    label: str = ""  # how reports name it, e.g. "ONNX int8 (dynamic)"
    marker: str = "o"  # its points in the frontier's plot (a matplotlib marker)
    precision: str = (
        "fp32"  # "fp32" or "int8": the GEMM peak (bench/peaks.py) its encode rows are read against
    )
    file: str | None = None  # the file it adds to an export (its folder may hold more); None: adds none
    with_calibration: bool = False  # written only when calibration sentences are given (--openvino TASK)

    @property
    def folder(self) -> str | None:
        """The export's folder its files lie in (`onnx/`): what a store's identity covers for it."""
        return None if self.file is None else self.file.split("/", 1)[0] + "/"

    def owns(self, rel: str) -> bool:
        """Whether an export's file (path relative to it) is this backend's graph: its file, or one beside
        it with the same stem (an OpenVINO .xml's .bin, an ONNX graph's external data)."""
        if self.file is None:
            return False
        folder, _, name = self.file.rpartition("/")
        return rel.startswith(f"{folder}/{name.split('.')[0]}.") or rel == self.file

    def present(self, spec: dict) -> bool:
        """Whether the export whose spec this is serves this backend."""
        return self.file is None or self.name in spec.get(GRAPHS, {})

    def missing(self, path: Path) -> str:
        """The error for an export without this backend's files: what to run to add them."""
        how = " --openvino TASK" if self.with_calibration else ""
        return (
            f"{path}: backend={self.name!r} but the export has no such graph encoder; add it with "
            f"`python -m dse_lightning.export.onnx {path}{how}`"
        )

    def write(self, writing: Writing) -> None:  # noqa: B027 (optional: a backend without files has none)
        """Write this backend's files into `writing.folder` (a backend without files writes nothing)."""

    @abstractmethod
    def load(self, folder: Path, spec: dict, device: str) -> EncodeFn:
        """The export at `folder` (its files verified) as this backend runs it: batch -> (B, D)."""


class GraphBackend(Backend):
    """A backend that serves a graph file (`file`) it compiles: students and cross-encoders alike."""

    @abstractmethod
    def compile(self, graph: Path) -> Run:
        """The graph file compiled for the CPU, with the torch path's threads."""

    def load(self, folder: Path, spec: dict, device: str) -> EncodeFn:
        return GraphEncoder.of(folder, spec, self.compile(folder / self.file))
