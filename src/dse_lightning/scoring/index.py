"""Query-vs-candidates search with a trained student: the Python API behind `python -m dse_lightning.score`.

    from dse_lightning.scoring import open_index
    index = open_index("logs/.../student/export", "stores/faq", candidates=sentences)  # encodes once
    index.search(["How do I reset my password?"], k=5)  # [[Hit(index, sentence, score), ...]]

A second `open_index` with the same store path loads the cached embeddings instead of encoding. The store
is built through Lightning's predict loop (build.py; `python -m dse_lightning.build_store` for other
trainers); `dtype` keeps it compact, `search` / `shortlist` pick an approximate or two-stage scorer.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..embeddings.ann import Search
from ..embeddings.scorers import RankKey, single_output
from ..export import ExportedStudent, load_student
from ..export.backends import DEFAULT
from ..store import MANIFEST
from .build import SHARD_SIZE, build_store, default_trainer, plan_for
from .corpus import distinct, read_stream
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
        search: Search | None = None,
        shortlist: int | None = None,
    ) -> None:
        self.student, self.store = student, store
        self.key, self.column = rank_key(student.spec, label)
        self.scorer = student.head.scorer(store.candidates, chunk_size, search, shortlist)

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
    candidates: Iterable[str] | str | Path | None = None,
    rebuild: bool = False,
    label: str | None = None,
    batch_size: int = 64,
    chunk_size: int = 1024,
    progress: bool = True,
    backend: str = DEFAULT,
    dtype: str = "float32",
    search: Search | None = None,
    shortlist: int | None = None,
    task: str | None = None,
) -> CandidateIndex:
    """Load the store at `store_path` (checked against this student and `candidates`), or build it.

    candidates: sentences, or a file of them (one per line, streamed); their distinct lines are the rows.
    backend: how the student encodes (load_student), part of the store's identity. dtype: the rows'
    storage when building (float32, float16, int8). search / shortlist: the scorer (heads.scorer).
    task: which head scores (a multi-task student's; the store is the encoder's, one for every head)."""
    student = load_student(student_dir, backend).for_task(task)  # a wrong or missing task: before encoding
    student_id = student_identity(student_dir, backend)
    store_path = Path(store_path)
    if (store_path / MANIFEST).is_file() and not rebuild:
        store = EmbeddingStore.load(store_path, student_id)
        if candidates is not None:
            store.check_sentences(_distinct(candidates), "the given candidates")
        log.info("loaded %d cached candidate embeddings from %s", len(store.sentences), store_path)
    elif candidates is None:
        raise FileNotFoundError(f"{store_path}: no embedding store there; give the candidates to build one")
    else:
        # one CPU process here; other trainers: `python -m dse_lightning.build_store`
        with _as_file(candidates, store_path) as path:
            plan = plan_for(student_dir, path, store_path, backend, SHARD_SIZE)
            index = search if search is not None and search.mode != "exact" else None  # built with the store
            trainer = default_trainer(plan, progress)
            args = (student_dir, path, store_path, dtype, backend, batch_size, index)
            store = build_store(trainer, plan, *args)
        log.info("encoded %d candidates into %s", len(store.sentences), store_path)
    return CandidateIndex(student, store, label, chunk_size, search, shortlist)


def _distinct(candidates: Iterable[str] | str | Path) -> Iterable[str]:
    if isinstance(candidates, str | Path):
        return distinct(read_stream(candidates, "candidates"))
    return distinct(c.strip() for c in candidates if c.strip())


@contextmanager
def _as_file(candidates: Iterable[str] | str | Path, store_path: Path) -> Iterator[Path]:
    """A candidates file: the given one, or the sentences written to a temp file beside the store."""
    if isinstance(candidates, str | Path):
        yield Path(candidates)
        return
    store_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{store_path.name}.", suffix=".txt", dir=store_path.parent)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            for sentence in candidates:
                if "\n" in sentence.strip():
                    raise ValueError(f"a candidate holds a line break: {sentence!r}; one sentence a line")
                f.write(sentence.strip() + "\n")
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
