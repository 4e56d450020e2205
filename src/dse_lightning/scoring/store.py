"""Candidate embeddings cached on disk, tied to the student that made them.

A store is an artifact folder (store.py): `embeddings.safetensors` ({"embeddings": (N, d)} in the store's
dtype, float32, float16 or int8 codes with their ranges: compact.py; row i embeds sentence i) and
`sentences.json` (the N candidates in row order), with the manifest's meta holding the student's
identity, N, d, the dtype and the sentences' checksum. Loading checks every file's sha256, then the
student's identity: embeddings mean something only to the student that computed them (its encoder made
them, its head scores them), so a store from another one is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor

from ..embeddings.ann import FaissIndex
from ..embeddings.compact import Candidates
from ..export.backends import BACKENDS, DEFAULT, get_backend
from ..export.student_io import KIND as EXPORT
from ..store import publish, read_manifest, verify
from ..utils.io import sentences_checksum, sha256_json

KIND = "embedding store"


class StoreMismatchError(ValueError):
    """A store that does not belong to this student or to these candidates."""


def student_identity(export_dir: str | Path, backend: str = DEFAULT) -> str:
    """A hash of the files of a student export that compute its embeddings with `backend` (from its
    manifest): README.md aside (the model card does not change what the student computes), and each
    registered backend's folder (onnx/, openvino/) only for the backends whose files lie there (adding
    them leaves the torch stores valid). Any backend but the default is named in it (an int8 store is not
    a torch one)."""
    serving = get_backend(backend)
    files = read_manifest(Path(export_dir), EXPORT)["files"]
    graphs = tuple({b.folder for b in BACKENDS.values() if b.folder})
    used = {k: v for k, v in files.items() if k != "README.md" and not k.startswith(graphs)}
    if serving.name != DEFAULT:  # the files of its own runtime's folder
        own = {k: v for k, v in files.items() if serving.folder and k.startswith(serving.folder)}
        used |= {"backend": serving.name, **own}
    return sha256_json(used)


@dataclass
class EmbeddingStore:
    candidates: Candidates  # (N, d) as stored
    sentences: list[str]
    student_id: str

    def __post_init__(self) -> None:
        if isinstance(self.candidates, Tensor):  # float32 rows
            self.candidates = Candidates(self.candidates.detach().float())
        if len(self.candidates) != len(self.sentences):
            raise ValueError(
                f"EmbeddingStore: {len(self.candidates)} embeddings for {len(self.sentences)} sentences; "
                "expected one row per sentence"
            )

    def meta(self) -> dict:
        return {
            "student": self.student_id,
            "n": len(self.candidates),
            "dim": self.candidates.dim,
            "dtype": self.candidates.dtype,
            "sentences_sha256": sentences_checksum(self.sentences),
        }

    def save(self, path: str | Path, writer: bool = True, indexes: Iterable[FaissIndex] = ()) -> Path:
        """Write the store folder atomically (a killed write leaves no half store), with `indexes`
        (faiss, over the normalised rows: what the dot head and two-stage shortlists search); this store
        then reads its indexes from there, as a loaded one would."""
        saved = {}

        def write(tmp: Path) -> dict:
            save_file(self.candidates.tensors(), tmp / "embeddings.safetensors")
            (tmp / "sentences.json").write_text(json.dumps(self.sentences, ensure_ascii=False))
            for index in indexes:
                (tmp / "index").mkdir(exist_ok=True)
                saved[index.key] = f"index/{re.sub(r'[^A-Za-z0-9]+', '_', index.key)}.faiss"
                index.save(tmp / saved[index.key])
            return self.meta() | ({"indexes": saved} if saved else {})

        published = publish(path, KIND, write, writer=writer).path
        if writer:
            self.candidates.indexes = {key: published / rel for key, rel in saved.items()}
        return published

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
        dtype = meta.get("dtype", "float32")  # stores written before compact dtypes: float32 rows
        candidates = Candidates.from_tensors(load_file(path / "embeddings.safetensors"), dtype)
        candidates.indexes = {key: path / rel for key, rel in meta.get("indexes", {}).items()}
        return cls(candidates, sentences, student_id)

    def check_sentences(self, sentences: Iterable[str], source: str) -> None:
        """Refuse a store built over other candidates than the distinct `sentences` (read from `source`)."""
        if sentences_checksum(sentences) != sentences_checksum(self.sentences):
            raise StoreMismatchError(
                f"the store holds {len(self.sentences)} candidates, not those of {source}; "
                "use a new --store path or --rebuild"
            )
