"""Augmented SBERT's transfer set (Thakur et al. 2021): new pairs recombined from the train sentences.

Each train sentence is paired with the pool sentences most like it by BM25 (`bm25s`) and by the cosine of a
sentence encoder's embeddings (faiss), and with random ones: rank 1 of every sentence first, then rank 2,
and so on, until each sampler has its share of `per_gold` x the number of gold pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch.nn.functional as F

from ..embeddings.encode import encode_corpus, mean_pooled_encoder
from ..utils.portable import base_model_name, weight_hashes
from .generators import Pair, PairGenerator, Sources, quota

SAMPLERS = ("bm25", "semantic", "random")


def _ranked(queries: list[str], neighbours: list[list[int]], pool: list[str]) -> Iterator[Pair]:
    """(query, its r-th neighbour) for r = 0, 1, ...: everyone's best partner before anyone's second."""
    for r in range(max(map(len, neighbours), default=0)):
        for q, near in zip(queries, neighbours, strict=True):
            if r < len(near):
                yield q, pool[near[r]]


class Recombine(PairGenerator):
    name = "recombine"

    def __init__(self, per_gold: float = 2.0, samplers=SAMPLERS, top_k: int = 5, encoder: str | None = None):
        samplers = list(samplers)
        if per_gold <= 0 or top_k < 1 or not samplers or set(samplers) - set(SAMPLERS):
            raise ValueError(
                f"Recombine: per_gold > 0, top_k >= 1, samplers from {SAMPLERS}; "
                f"got {per_gold}, {top_k}, {samplers}"
            )
        if "semantic" in samplers and not encoder:
            raise ValueError("Recombine: the semantic sampler needs `encoder` (a model name or folder)")
        self.per_gold, self.samplers, self.top_k, self.encoder = per_gold, samplers, top_k, encoder

    def describe(self) -> dict:
        """The encoder by what it is: a folder by its model name (an embedded package's hub name, else the
        folder's) and its weight hashes, not by the path it has here (what the transfer set's manifest
        records, and its key hashes); a hub id as given."""
        out = super().describe()
        if self.encoder and Path(self.encoder).is_dir():
            out["encoder"] = base_model_name(str(self.encoder)) or Path(self.encoder).name
            out["encoder_weights"] = weight_hashes(self.encoder)
        return out

    def _bm25(self, queries: list[str], sources: Sources) -> Iterator[Pair]:
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(
            bm25s.tokenize(sources.pool, stopwords="en", show_progress=False), show_progress=False
        )
        k = min(self.top_k + 1, len(sources.pool))  # +1: a sentence finds itself first
        tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False)
        found, scores = retriever.retrieve(tokens, k=k, show_progress=False)
        # A partner sharing no word scores 0: not a lexical neighbour, so not taken as one.
        near = [
            [i for i, s in zip(ids, row, strict=True) if s > 0]
            for ids, row in zip(found.tolist(), scores.tolist(), strict=True)
        ]
        return _ranked(queries, near, sources.pool)

    def _semantic(self, queries: list[str], sources: Sources) -> Iterator[Pair]:
        import faiss

        encode = mean_pooled_encoder(self.encoder)
        pool = F.normalize(encode_corpus(encode, sources.pool, progress=False), dim=-1)  # (P, d)
        index = faiss.IndexFlatIP(pool.shape[1])
        index.add(pool.numpy())
        q = F.normalize(encode_corpus(encode, queries, progress=False), dim=-1)  # (Q, d)
        _, found = index.search(q.numpy(), min(self.top_k + 1, len(sources.pool)))
        return _ranked(queries, found.tolist(), sources.pool)

    def _random(self, queries: list[str], sources: Sources) -> Iterator[Pair]:
        for _ in range(100 * len(queries)):
            yield sources.rng.choice(queries), sources.rng.choice(sources.pool)

    def pairs(self, sources: Sources) -> list[Pair]:
        queries = list(dict.fromkeys(s for pair in sources.gold for s in pair))  # the train sentences
        share = -(-quota(self.per_gold, sources) // len(self.samplers))
        out: list[Pair] = []
        for name in self.samplers:
            candidates = getattr(self, f"_{name}")(queries, sources)
            out += islice((p for p in candidates if sources.take(p)), share)
        return out
