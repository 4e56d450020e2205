"""Query-vs-candidates search with a trained student: the Python API behind `python -m dse_lightning.score`.

    from dse_lightning.scoring import open_index
    index = open_index("logs/.../student/export", "stores/faq", candidates=sentences)  # encodes once
    index.search(["How do I reset my password?"], k=5)  # [[Hit(index, sentence, score), ...]]

A second `open_index` with the same store path loads the cached embeddings instead of encoding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..export import ExportedStudent, load_student
from ..store import MANIFEST
from .encode import encode_corpus
from .scorers import RankKey, single_output
from .store import EmbeddingStore, student_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    index: int  # row of the candidate in the store
    sentence: str
    score: float  # P(positive) (binary), the predicted score (regression), P(label) (multiclass)


def rank_key(spec: dict, label: str | None) -> tuple[RankKey, int | None]:
    """How candidates are ranked, and the class column reported (heads with several outputs only).

    One-output heads (binary, regression) rank by their logit (sigmoid is monotone but saturates to ties
    in float32); multiclass heads by the log-probability of `label`.
    """
    labels = spec["labels"]
    if spec["head"]["num_outputs"] == 1:
        return single_output, None
    if label not in labels:
        raise ValueError(
            f"a {len(labels)}-class student ranks candidates by one class's probability: "
            f"pass --label (label=) as one of {labels}, got {label!r}"
        )
    col = labels.index(label)
    return (lambda logits: logits.log_softmax(-1)[:, col]), col


class CandidateIndex:
    """A student plus its cached candidate embeddings; `search` returns each query's top k."""

    def __init__(
        self,
        student: ExportedStudent,
        store: EmbeddingStore,
        label: str | None = None,
        chunk_size: int = 1024,
    ) -> None:
        self.student, self.store = student, store
        self.key, self.column = rank_key(student.spec, label)
        self.scorer = student.head.scorer(store.embeddings, chunk_size)

    def _scores(self, logits: Tensor) -> Tensor:
        scores = self.student.kind.scores(logits)  # (k,) or (k, C)
        return scores[:, self.column] if self.column is not None else scores.reshape(-1)

    @torch.inference_mode()
    def search(self, queries: list[str], k: int = 10) -> list[list[Hit]]:
        if k < 1:
            raise ValueError(f"top-k must be >= 1, got {k}")
        results = []
        for u in self.student.encode(queries):  # (d,) per query
            logits, idx = self.scorer.topk(u, k, self.key)
            scores = self._scores(logits)
            results.append(
                [Hit(int(i), self.store.sentences[i], float(s)) for i, s in zip(idx, scores, strict=True)]
            )
        return results


def open_index(
    student_dir: str | Path,
    store_path: str | Path,
    candidates: list[str] | None = None,
    rebuild: bool = False,
    label: str | None = None,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    backend: str = "torch",
) -> CandidateIndex:
    """Load the store at `store_path` (checked against this student and `candidates`), or build it;
    backend: how the student encodes (load_student), part of the store's identity."""
    student, student_id = load_student(student_dir, backend), student_identity(student_dir, backend)
    store_path = Path(store_path)
    distinct = list(dict.fromkeys(candidates)) if candidates is not None else None
    if (store_path / MANIFEST).is_file() and not rebuild:
        store = EmbeddingStore.load(store_path, student_id)
        if distinct is not None:
            store.check_sentences(distinct, "the given candidates")
        log.info("loaded %d cached candidate embeddings from %s", len(store.sentences), store_path)
    elif distinct is None:
        raise FileNotFoundError(f"{store_path}: no embedding store there; give the candidates to build one")
    else:
        embeddings = encode_corpus(student.encode_batch, distinct, batch_size, progress)
        store = EmbeddingStore(embeddings, distinct, student_id)
        store.save(store_path)
        log.info("encoded %d candidates into %s", len(distinct), store_path)
    return CandidateIndex(student, store, label, chunk_size)
