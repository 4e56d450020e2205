"""Scalable scoring: cached candidate embeddings, fast query-vs-candidates search with the student's head."""

from .encode import encode_corpus
from .index import CandidateIndex, Hit, open_index
from .scorers import ConcatScorer, DotScorer, naive_logits
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
