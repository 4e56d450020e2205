"""Candidate embeddings cached on disk, tied to the student that made them.

A store is an artifact folder (store.py): `embeddings.safetensors` ({"embeddings": (N, d) float32}, row i
embeds sentence i) and `sentences.json` (the N candidates in row order), with the manifest's meta holding
the student's identity, N, d and the sentences' checksum. Loading checks every file's sha256, then the
student's identity: embeddings mean something only to the student that computed them (its encoder made
them, its head scores them), so a store from another one is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor

from ..export.student_io import KIND as EXPORT
from ..store import publish, read_manifest, verify
from ..utils.io import sha256_json

KIND = "embedding store"


class StoreMismatchError(ValueError):
    """A store that does not belong to this student or to these candidates."""


def student_identity(export_dir: str | Path, backend: str = "torch") -> str:
    """A hash of the files of a student export that compute its embeddings with `backend` (from its
    manifest): README.md aside (the model card does not change what the student computes), and the ONNX
    graphs only for their own backend (adding them leaves the torch stores valid; an int8 store is not
    a torch one)."""
    files = read_manifest(Path(export_dir), EXPORT)["files"]
    used = {k: v for k, v in files.items() if k != "README.md" and not k.startswith("onnx/")}
    if backend != "torch":
        used |= {"backend": backend, **{k: v for k, v in files.items() if k.startswith("onnx/")}}
    return sha256_json(used)


def sentences_checksum(sentences: list[str]) -> str:
    return sha256_json(sentences)


@dataclass
class EmbeddingStore:
    embeddings: Tensor  # (N, d) float32
    sentences: list[str]
    student_id: str

    def __post_init__(self) -> None:
        if self.embeddings.dim() != 2 or self.embeddings.shape[0] != len(self.sentences):
            raise ValueError(
                f"EmbeddingStore: embeddings of shape {tuple(self.embeddings.shape)} for "
                f"{len(self.sentences)} sentences; expected ({len(self.sentences)}, d)"
            )

    def save(self, path: str | Path) -> Path:
        """Write the store folder atomically (a killed write leaves no half store)."""

        def write(tmp: Path) -> dict:
            save_file({"embeddings": self.embeddings.float().contiguous()}, tmp / "embeddings.safetensors")
            (tmp / "sentences.json").write_text(json.dumps(self.sentences, ensure_ascii=False))
            n, dim = self.embeddings.shape
            return {
                "student": self.student_id,
                "n": n,
                "dim": dim,
                "sentences_sha256": sentences_checksum(self.sentences),
            }

        return publish(path, KIND, write, writer=True).path

    @classmethod
    def load(cls, path: str | Path, student_id: str) -> EmbeddingStore:
        """Load a store made by the student whose identity is `student_id`; refuse any other."""
        path = Path(path)
        meta = verify(path, KIND, "rebuild it (--rebuild) or use a new --store path")
        if meta["student"] != student_id:
            raise StoreMismatchError(
                f"{path}: embeddings were made by student {meta['student'][:16]}…, not by this student "
                f"{student_id[:16]}…; their vectors mean nothing to its head. Re-encode the candidates "
                "with this student (a new --store path, or --rebuild)."
            )
        sentences = json.loads((path / "sentences.json").read_text())
        return cls(load_file(path / "embeddings.safetensors")["embeddings"], sentences, student_id)

    def check_sentences(self, sentences: list[str], source: str) -> None:
        """Refuse a store built over other candidates than `sentences` (read from `source`)."""
        if sentences_checksum(sentences) != sentences_checksum(self.sentences):
            raise StoreMismatchError(
                f"the store holds {len(self.sentences)} candidates, not those of {source} "
                f"({len(sentences)} distinct); use a new --store path or --rebuild"
            )
