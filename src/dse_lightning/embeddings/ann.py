"""Inner-product search over candidate vectors with faiss: exact, IVF or HNSW, over float32/fp16/int8 codes.

The index is named by a faiss `index_factory` string built from `Search` and the store's dtype:
exact `Flat` / `SQfp16` / `SQ8`, IVF `IVF{nlist},<same>`, HNSW `HNSW{m}` / `HNSW{m},<same>`. Approximate
modes trade recall for time; `experiments/bench` measures both against exact search.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .compact import BLOCK

MODES = ("exact", "ivf", "hnsw")
CODES = {"float32": "Flat", "float16": "SQfp16", "int8": "SQ8"}
TRAIN_PER_LIST = 64  # IVF k-means sees up to this many vectors per list (faiss warns below 39)


@dataclass(frozen=True)
class Search:
    """How the dot head (or a two-stage shortlist) searches: `mode` and its parameters."""

    mode: str = "exact"
    nlist: int | None = None  # IVF lists; None: sqrt(N)
    nprobe: int = 16  # IVF lists visited per query
    hnsw_m: int = 32  # HNSW links per node
    ef_search: int = 128  # HNSW candidates kept while searching
    # exact: the rows split in this many contiguous parts scanned at once, one thread each (a single
    # query is one scan for faiss; one core does not reach the memory bandwidth of the machine)
    threads: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"search mode {self.mode!r}: expected one of {MODES}")
        if self.threads > 1 and self.mode != "exact":
            raise ValueError(f"search threads={self.threads} splits exact scans only, not {self.mode}")
        for name in ("nprobe", "hnsw_m", "ef_search", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"search {name} must be >= 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(f"search nlist must be >= 1, got {self.nlist}")

    def check_rows(self, n: int) -> None:
        """Refuse more IVF lists than rows (faiss trains a centroid a list on the rows, and says so only
        once every candidate is encoded, naming no option)."""
        if self.mode == "ivf" and self.nlist is not None and self.nlist > n:
            raise ValueError(
                f"nlist={self.nlist} (score --nlist, build_store index.nlist): more IVF lists than the {n} "
                f"distinct candidates; use at most {n}, or leave it unset for sqrt(N) = {self.lists(n)}"
            )

    def lists(self, n: int) -> int:
        """sqrt(N) lists by default (1,000 at 1M: a short k-means, ~1,000 rows a list), at least 39
        training rows a list as faiss asks."""
        return self.nlist or max(1, min(n // 39, round(math.sqrt(n))))

    def train_rows(self, n: int) -> int:
        """How many of N rows an index is trained on (`sample_rows`): TRAIN_PER_LIST a list, a block at
        least."""
        return max(TRAIN_PER_LIST * (self.lists(n) if self.mode == "ivf" else 1), BLOCK)

    def factory(self, dtype: str, n: int) -> str:
        codes = CODES[dtype]
        if self.mode == "exact":
            return codes
        if self.mode == "ivf":
            return f"IVF{self.lists(n)},{codes}"
        return f"HNSW{self.hnsw_m}" + ("" if codes == "Flat" else f",{codes}")

    def describe(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


class single_thread:  # noqa: N801 - a context manager read like a statement
    """faiss with one OpenMP thread in the calling thread (OpenMP's thread count is a per-thread setting):
    one query is one scan, and a second thread only adds a barrier that stalls the scan (by ~10x,
    measured) whenever another process holds the other core."""

    def __enter__(self):
        import faiss

        self.threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)

    def __exit__(self, *exc) -> None:
        import faiss

        faiss.omp_set_num_threads(self.threads)


class FaissIndex:
    """A faiss inner-product index over (N, d) float vectors added in blocks (never all in float32).

    With `search.threads` = t > 1 (exact only) the rows go into t indexes over contiguous row ranges,
    searched at once from a thread pool (faiss releases the GIL) and merged."""

    def __init__(self, dim: int, n: int, dtype: str = "float32", search: Search | None = None) -> None:
        import faiss

        self.search_cfg = search or Search()
        self.search_cfg.check_rows(n)
        self.key = self.search_cfg.factory(dtype, n)
        self.index = faiss.index_factory(dim, self.key, faiss.METRIC_INNER_PRODUCT)
        self.parts: list[tuple[int, object]] = [(0, self.index)]  # (first row, index over its rows)
        self.pool: ThreadPoolExecutor | None = None

    @classmethod
    def build(
        cls, blocks: Iterable[Tensor], dim: int, n: int, dtype: str, search: Search | None, sample: Tensor
    ) -> FaissIndex:
        """Train on `sample` (rows like the blocks') if the index needs it, then add the blocks."""
        import faiss

        index = cls(dim, n, dtype, search)
        if not index.index.is_trained:
            index.index.train(np.ascontiguousarray(sample.float().numpy()))
        t = index.search_cfg.threads
        if t > 1:  # trained, still empty: each part a copy
            index.parts = [(n * i // t, faiss.clone_index(index.index)) for i in range(t)]
            index.pool = ThreadPoolExecutor(t, thread_name_prefix="faiss-part")
        row = 0
        for block in blocks:
            for lo, part in index.parts:
                hi = next((b for b, _ in index.parts if b > lo), n)
                rows = block[max(lo - row, 0) : max(hi - row, 0)]
                if len(rows):
                    part.add(np.ascontiguousarray(rows.float().numpy()))
            row += block.shape[0]
        index.index = index.parts[0][1]
        index.configure()
        return index

    def configure(self) -> None:
        """Apply the query-time parameters (also after `faiss.read_index`)."""
        import faiss

        if self.search_cfg.mode == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.search_cfg.nprobe
        elif self.search_cfg.mode == "hnsw":
            faiss.downcast_index(self.index).hnsw.efSearch = self.search_cfg.ef_search

    def __len__(self) -> int:
        return sum(part.ntotal for _, part in self.parts)

    def save(self, path: Path) -> None:
        import faiss

        if len(self.parts) > 1:
            raise ValueError("a split index (search threads > 1) is not saved; save the one-part index")
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, key: str, search: Search) -> FaissIndex:
        """An index saved with a store (built once); `search`'s query-time parameters applied."""
        import faiss

        index = cls.__new__(cls)
        index.search_cfg, index.key, index.index = search, key, faiss.read_index(str(path))
        index.parts, index.pool = [(0, index.index)], None
        index.configure()
        return index

    def search_many(self, queries: Tensor, k: int) -> Tensor:
        """(Q, d) -> (Q, k) row indices (-1 where fewer were found): a batch, on faiss's own threads (what
        the benchmark's recall needs; a served query goes through `search`)."""
        x = np.ascontiguousarray(queries.float().numpy())
        return torch.from_numpy(_merge([(lo, *part.search(x, k)) for lo, part in self.parts], k)[1])

    def search(self, q: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """q (d,) -> (inner products (k,), indices (k,) int64), best first; fewer hits -> -1 dropped."""
        x = np.ascontiguousarray(q.float().reshape(1, -1).numpy())
        if self.pool is None:
            found = [_search_part((0, self.index), x, k)]
        else:  # each pool thread sets its own OpenMP count (left at 2, both parts took as long as one)
            found = list(self.pool.map(lambda p: _search_part(p, x, k), self.parts))
        sims, idx = (a[0] for a in _merge(found, k))
        keep = idx >= 0  # IVF probing few lists can return fewer than k
        return torch.from_numpy(sims[keep].copy()), torch.from_numpy(idx[keep])


def _search_part(part: tuple[int, object], x: np.ndarray, k: int) -> tuple[int, np.ndarray, np.ndarray]:
    with single_thread():
        return (part[0], *part[1].search(x, k))


def _merge(found: list[tuple[int, np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each part's (first row, sims (Q, k), ids (Q, k)) -> the best k over all parts: (sims, row ids
    int64), -1 where fewer were found; one part's hits keep faiss's order (the sort is stable)."""
    sims = np.concatenate([s for _, s, _ in found], axis=1)
    idx = np.concatenate([np.where(i >= 0, i + lo, -1) for lo, _, i in found], axis=1).astype(np.int64)
    sims = np.where(idx >= 0, sims, -np.inf)
    best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, best, axis=1), np.take_along_axis(idx, best, axis=1)
