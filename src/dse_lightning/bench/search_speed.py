"""Corpus-scale search: per N, storage dtype and search mode, the dot head's time per query, recall@10
against exact float32 search, store size, peak memory and the memory floor; two-stage concat against
the full concat pass.

Rows are drawn with replacement from the real embeddings (as the scoring rows are), so a sentence occurs
many times at large N; or, with `--search-corpus` (bench/corpus.py), each row is a different sentence of a
corpus of distinct ones. Recall is tie-aware: a returned row counts when its exact score is at
least the exact 10th best (any of a sentence's copies is as good as another); `same_top10` is the share
of queries whose 10 returned rows all count.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..embeddings.ann import FaissIndex, Search
from ..embeddings.compact import BLOCK, BYTES, Candidates
from ..embeddings.scorers import ConcatScorer, TwoStage, cosine_index, sample_rows
from .timing import median_seconds, peak_rss_mib, reset_peak_rss, rss_mib

log = logging.getLogger(__name__)
TIE = 1e-5  # scores within this of the 10th best are ties (float32 sums of 1,536 products)


def draw(n: int, pool: int, seed: int) -> Tensor:
    """Which real embedding each of the n rows is (the same draw as the scoring rows)."""
    return torch.randint(pool, (n,), generator=torch.Generator().manual_seed(seed))


def draw_distinct(n: int, seed: int) -> Tensor:
    """Each of the n rows a different pool sentence (a pool of n distinct ones), in a seeded order: the
    first rows of a smaller N are a random subset, not the pool's first sentences."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def exact_scores(unit_pool: Tensor, rows: Tensor, q: Tensor, ids: Tensor) -> Tensor:
    """Exact cosines of the returned row ids (the rows are copies of pool vectors)."""
    return unit_pool[rows[ids]] @ q


def truth(unit_pool: Tensor, unit_q: Tensor, rows: Tensor, k: int) -> Tensor:
    """(Q,) the exact k-th best cosine of each query over the N rows: the pool's scores, counted with
    each pool vector's multiplicity in the draw."""
    counts = torch.bincount(rows, minlength=unit_pool.shape[0])
    kth = []
    for q in unit_q:
        scores = unit_pool @ q
        order = scores.argsort(descending=True)
        reach = counts[order].cumsum(0)  # rows covered by the best pool vectors
        kth.append(scores[order[int((reach < k).sum())]])
    return torch.stack(kth)


def recall(scores: list[Tensor], kth: Tensor, k: int) -> tuple[float, float]:
    """(mean tie-aware recall@k, share of queries with the whole top-k right): scores are the exact
    scores of each query's returned rows, kth its exact k-th best."""
    hits = [int((s >= t - TIE * max(1.0, abs(float(t)))).sum()) for s, t in zip(scores, kth, strict=True)]
    return sum(min(h, k) for h in hits) / (k * len(hits)), sum(h >= k for h in hits) / len(hits)


def _build(unit_pool: Tensor, rows: Tensor, dtype: str, search: Search) -> tuple[FaissIndex, float, float]:
    n = rows.shape[0]
    sample = unit_pool[rows[sample_rows(n, search.train_rows(n))]]
    blocks = (unit_pool[rows[s : s + BLOCK]] for s in range(0, n, BLOCK))
    rss, start = rss_mib(), time.perf_counter()
    index = FaissIndex.build(blocks, unit_pool.shape[1], n, dtype, search, sample)
    return index, time.perf_counter() - start, rss_mib() - rss


def floor_bytes(n: int, d: int, dtype: str, search: Search) -> float | None:
    """Bytes one query must read: every code (exact), the probed lists and the centroids (IVF)."""
    codes = n * d * BYTES[dtype]
    if search.mode == "exact":
        return codes
    if search.mode == "ivf":
        lists = search.lists(n)
        return codes * min(1.0, search.nprobe / lists) + lists * d * 4
    return None  # HNSW: a graph walk, not a scan


def search_row(ctx, n: int, dtype: str, search: Search) -> dict:
    """One (N, dtype, mode, threads) row: build, time single queries, measure recall on every query."""
    rows = ctx.rows[:n]
    reset_peak_rss()
    index, build_s, index_mib = _build(ctx.unit_pool, rows, dtype, search)
    k = ctx.k
    score_s, times = median_seconds(lambda q: index.search(q, k), list(ctx.unit_q[: ctx.timed]))
    found = [ids[ids >= 0] for ids in index.search_many(ctx.unit_q, k)]  # the same hits, batched
    scores = [exact_scores(ctx.unit_pool, rows, q, ids) for q, ids in zip(ctx.unit_q, found, strict=True)]
    mean_recall, whole = recall(scores, ctx.kth[n], k)
    floor = floor_bytes(n, ctx.dim, dtype, search)
    row = {
        "n": n, "dtype": dtype, "mode": search.mode, "threads": search.threads, "factory": index.key,
        "search": search.describe(),
        "score_s": score_s, "score_times": times, f"recall@{k}": mean_recall, f"same_top{k}": whole,
        "store_mib": n * ctx.dim * BYTES[dtype] / 2**20, "index_mib": index_mib, "index_build_s": build_s,
        "peak_rss_mib": peak_rss_mib(), "queries": len(found), "timed_queries": len(times),
    }  # fmt: skip
    if floor is not None:
        row["memory_floor_s"] = floor / (ctx.gb_per_s * 1e9)
        row["x_memory_floor"] = score_s / row["memory_floor_s"]
    log.info("search N=%d %s: %.5f s/query, recall@%d %.4f", n, row["factory"], score_s, k, mean_recall)
    return row


def two_stage_rows(ctx, head, n: int, shortlists: list[int], searches: list[Search]) -> list[dict]:
    """Two-stage concat (a cosine shortlist of M by each search, re-scored) against the full concat pass
    over the same N rows; the full pass (timed, and every query's exact scores) is computed once."""
    full = ConcatScorer(head, Candidates(ctx.pool_emb[ctx.rows[:n]]), chunk_size=ctx.chunk)
    queries = list(ctx.raw_q[: ctx.two_stage_queries])
    key = lambda logits: logits[:, -1]  # noqa: E731 - the one logit of a binary or regression head
    full_s, _ = median_seconds(lambda u: full.topk(u, ctx.k, key), queries[: ctx.timed])
    every = [key(full.logits(u)) for u in queries]  # (N,) each
    kth = torch.stack([e.topk(ctx.k).values[-1] for e in every])
    rows = []
    for search in searches:
        index = cosine_index(full.candidates, search)  # one shortlist index for every M
        for m in shortlists:
            two = TwoStage(full, m, index=index)
            two_s, times = median_seconds(lambda u, t=two: t.topk(u, ctx.k, key), queries[: ctx.timed])
            scores = [e[two.topk(u, ctx.k, key)[1]] for u, e in zip(queries, every, strict=True)]
            mean_recall, whole = recall(scores, kth, ctx.k)
            rows.append({
                "n": n, "shortlist": m, "factory": index.key, "search": search.describe(),
                "full_score_s": full_s, "score_s": two_s, "score_times": times, "x_faster": full_s / two_s,
                f"recall@{ctx.k}": mean_recall, f"same_top{ctx.k}": whole, "queries": len(queries),
            })  # fmt: skip
            log.info("two-stage N=%d M=%d %s: %.4f s vs full %.4f s, same top-%d %.3f", n, m, index.key,
                     two_s, full_s, ctx.k, whole)  # fmt: skip
        gc.collect()
    return rows


def unit(x: Tensor) -> Tensor:
    return F.normalize(x.float(), dim=-1).contiguous()


@dataclass
class SearchContext:
    pool_emb: Tensor  # (P, d) real embeddings the rows are drawn from
    raw_q: Tensor  # (Q, d) query embeddings (sentences not in the pool)
    rows: Tensor  # (N_max,) pool row of each candidate row
    k: int
    timed: int  # single queries timed per row (median)
    two_stage_queries: int
    chunk: int  # the concat scorer's chunk (the scoring section's fastest)
    gb_per_s: float  # memory bandwidth: the floors' denominator

    def __post_init__(self) -> None:
        self.unit_pool, self.unit_q, self.dim = unit(self.pool_emb), unit(self.raw_q), self.pool_emb.shape[1]
        self.kth: dict[int, Tensor] = {}

    def truth_at(self, n: int) -> None:
        self.kth[n] = truth(self.unit_pool, self.unit_q, self.rows[:n], self.k)


def _plan(cfg, n: int) -> list[tuple[str, Search]]:
    """(dtype, search) rows at N = n: exact for every dtype, the approximate modes for cfg.ann_dtypes."""
    plan = [(dtype, Search(threads=t)) for dtype in cfg.search_dtypes for t in cfg.search_threads]
    for mode in (m for m in cfg.search_modes if m != "exact"):
        if mode == "hnsw" and n > cfg.hnsw_max_n:
            continue  # its build is hours at 1M on 2 cores; recorded as not run
        plan += [(dtype, _search(cfg, mode)) for dtype in cfg.ann_dtypes]
    return plan


def _search(cfg, mode: str) -> Search:
    """`mode` with the benchmark's index parameters (exact: one thread, as a served shortlist)."""
    return Search() if mode == "exact" else Search(mode, cfg.nlist, cfg.nprobe, cfg.hnsw_m, cfg.ef_search)


def time_search(cfg, ctx: SearchContext, concat_head) -> dict:
    rows, two_stage = [], []
    for n in sorted(cfg.search_ns):
        ctx.truth_at(n)
        rows += [search_row(ctx, n, dtype, search) for dtype, search in _plan(cfg, n)]
        skipped = [m for m in cfg.search_modes if m == "hnsw" and n > cfg.hnsw_max_n]
        rows += [{"n": n, "mode": m, "not_run": f"N > --hnsw-max-n {cfg.hnsw_max_n}"} for m in skipped]
    shortlisting = [_search(cfg, mode) for mode in cfg.two_stage_modes]
    for n in sorted(cfg.two_stage_ns):
        two_stage += two_stage_rows(ctx, concat_head, n, cfg.shortlists, shortlisting)
    return {
        "rows": rows,
        "two_stage": two_stage,
        "pool": ctx.pool_emb.shape[0],
        "queries": ctx.raw_q.shape[0],
    }
