"""Scalable scoring: cached candidate embeddings, fast query-vs-candidates search with the student's head."""

from ..embeddings.encode import encode_corpus
from ..embeddings.scorers import ConcatScorer, DotScorer, naive_logits
from .index import CandidateIndex, Hit, open_index
from .store import EmbeddingStore, StoreMismatchError, student_identity

__all__ = [
    "CandidateIndex",
    "ConcatScorer",
    "DotScorer",
    "EmbeddingStore",
    "Hit",
    "StoreMismatchError",
    "encode_corpus",
    "naive_logits",
    "open_index",
    "student_identity",
]
