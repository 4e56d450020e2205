"""Time the student scoring one query against N cached candidates: decomposed concat, naive concat, dot."""

from __future__ import annotations

import gc
import logging
import time

import torch
from torch import Tensor, nn

from ..embeddings.scorers import ConcatScorer, DotScorer, naive_logits
from .timing import median_seconds

log = logging.getLogger(__name__)


def _rank(logits: Tensor) -> Tensor:
    return logits[:, -1]  # the head's one logit (binary: z1 - z0; regression: the score)


def tune_chunk(head: nn.Module, candidates: Tensor, queries: Tensor, chunks: list[int], k: int) -> dict:
    """Median query time of the decomposed concat head per candidate chunk size; the fastest wins."""
    times = {}
    for chunk in chunks:
        scorer = ConcatScorer(head, candidates, chunk_size=chunk)
        times[chunk] = median_seconds(lambda u, s=scorer: s.topk(u, k, _rank), list(queries))[0]
        log.info("concat chunk %d: %.4f s per query (N=%d)", chunk, times[chunk], len(candidates))
    return {"n": len(candidates), "seconds_by_chunk": times, "best": min(times, key=times.get)}


def _build(make) -> tuple[object, float]:
    start = time.perf_counter()
    scorer = make()
    return scorer, time.perf_counter() - start


def time_concat(head: nn.Module, candidates: Tensor, queries: Tensor, chunk: int, k: int) -> dict:
    scorer, build_s = _build(lambda: ConcatScorer(head, candidates, chunk_size=chunk))
    score_s, times = median_seconds(lambda u: scorer.topk(u, k, _rank), list(queries))

    def naive(u: Tensor) -> Tensor:
        return _rank(naive_logits(head, u, candidates)).topk(k).indices

    naive_s, _ = median_seconds(naive, list(queries))
    return {"score_s": score_s, "score_times": times, "index_build_s": build_s, "naive_score_s": naive_s}


def time_dot(head: nn.Module, candidates: Tensor, queries: Tensor, k: int) -> dict:
    scorer, build_s = _build(lambda: DotScorer(head, candidates))
    score_s, times = median_seconds(lambda u: scorer.topk(u, k), list(queries))
    return {"score_s": score_s, "score_times": times, "index_build_s": build_s}


def time_scoring(
    heads: dict[str, nn.Module], candidates: Tensor, queries: Tensor, ns: list[int], cfg
) -> dict:
    """{(n, head kind): timings} for the first n rows of `candidates` (N_max, d); queries (Q, d)."""
    mid = sorted(ns)[len(ns) // 2]
    tuning = tune_chunk(heads["concat"], candidates[:mid], queries[:3], cfg.chunks, cfg.top_k)
    out = {}
    for n in sorted(ns):
        cands = candidates[:n]
        out[(n, "concat")] = time_concat(heads["concat"], cands, queries, tuning["best"], cfg.top_k)
        out[(n, "dot")] = time_dot(heads["dot"], cands, queries, cfg.top_k)
        log.info(
            "N=%d: concat %.4f s (naive %.4f s), dot %.5f s per query",
            n, out[(n, "concat")]["score_s"], out[(n, "concat")]["naive_score_s"], out[(n, "dot")]["score_s"],
        )  # fmt: skip
        gc.collect()  # drop the last scorers' copies before the next, larger N
    return {"by_n_head": out, "chunk_tuning": tuning}


@torch.inference_mode()
def time_query_encode(encode_fn, queries: list[str]) -> float:
    """Median time to embed one query sentence (a serving system's per-query cost before scoring)."""
    return median_seconds(lambda q: encode_fn([q]), queries)[0]
