"""Candidate embeddings cached on disk, tied to the student that made them.

A store is a folder:
- `embeddings.safetensors`: {"embeddings": (N, d) float32}, row i embeds sentence i;
- `sentences.json`: the N candidate sentences, in row order;
- `store.json`: format, the student's identity, N, d, and the sentences' checksum.

Embeddings are only meaningful to the student that computed them (its encoder made them, its head
scores them), so loading checks the student's identity and refuses a store from another one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor

from ..utils.io import atomic_dir, read_manifest, sha256_file, sha256_json

FORMAT = "dse-embedding-store/1"


class StoreMismatchError(ValueError):
    """A store that does not belong to this student or to these candidates."""


def student_identity(export_dir: str | Path) -> str:
    """sha256 over every file of a student export (student.json, head and encoder weights, tokenizer).

    README.md is left out: it documents the export and does not change what the student computes.
    """
    root = Path(export_dir)
    if not (root / "student.json").is_file():
        raise FileNotFoundError(f"{root}: not a student export (no student.json)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "README.md")
    return sha256_json({str(p.relative_to(root)): sha256_file(p) for p in files})


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

    def meta(self) -> dict:
        return {
            "format": FORMAT,
            "student": self.student_id,
            "n": len(self.sentences),
            "dim": self.embeddings.shape[1],
            "sentences_sha256": sentences_checksum(self.sentences),
        }

    def save(self, path: str | Path) -> Path:
        """Write the store folder atomically (a killed write leaves no half store)."""
        with atomic_dir(path) as tmp:
            save_file({"embeddings": self.embeddings.float().contiguous()}, tmp / "embeddings.safetensors")
            (tmp / "sentences.json").write_text(json.dumps(self.sentences, ensure_ascii=False))
            (tmp / "store.json").write_text(json.dumps(self.meta(), indent=2))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, student_id: str) -> EmbeddingStore:
        """Load a store made by the student whose identity is `student_id`; refuse any other."""
        path = Path(path)
        meta = read_manifest(path, "store.json", FORMAT, "an embedding store")
        if meta["student"] != student_id:
            raise StoreMismatchError(
                f"{path}: embeddings were made by student {meta['student'][:16]}…, not by this student "
                f"{student_id[:16]}…; their vectors mean nothing to its head. Re-encode the candidates "
                "with this student (a new --store path, or --rebuild)."
            )
        sentences = json.loads((path / "sentences.json").read_text())
        if sentences_checksum(sentences) != meta["sentences_sha256"]:
            raise StoreMismatchError(f"{path}: sentences.json does not match the checksum in store.json")
        embeddings = load_file(path / "embeddings.safetensors")["embeddings"]
        return cls(embeddings, sentences, student_id)

    def check_sentences(self, sentences: list[str], source: str) -> None:
        """Refuse a store built over other candidates than `sentences` (read from `source`)."""
        if sentences_checksum(sentences) != sentences_checksum(self.sentences):
            raise StoreMismatchError(
                f"the store holds {len(self.sentences)} candidates, not those of {source} "
                f"({len(sentences)} distinct); use a new --store path or --rebuild"
            )
