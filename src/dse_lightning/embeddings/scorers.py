"""Score one query embedding against N cached candidate embeddings with a student's own pair head.

Shapes: N = candidates, d = embedding width, h = the concat head's hidden width, C = its outputs.

- `ConcatScorer`: the ConcatHead's first layer over [u, v, u*v, |u-v|] splits by column block,
  fc1.weight = [W_u | W_v | W_p | W_d], so for every candidate v
      W·[u; v; u*v; |u-v|] + b = W_u·u + (W_v·v + b) + (W_p ⊙ u)·v + W_d·|u-v|.
  `W_v·v + b` is computed once per corpus (index time), `W_u·u` and `W_p ⊙ u` once per query, and the
  two terms left are GEMMs over candidate chunks: 2·d·h multiply-adds a pair instead of 4·d·h, and no
  (N, 4d) feature matrix.
- `DotScorer`: a faiss inner-product index (ann.py: exact, IVF or HNSW) over the L2-normalised
  candidates; the head's scale and bias are applied to the k cosines it returns.
- `TwoStage`: the concat head re-scores a shortlist of M candidates, the nearest by cosine of the same
  embeddings (an ANN index): M·2·d·h multiply-adds a query instead of N·2·d·h.
- `naive_logits`: the head itself over every (u, v) pair: the reference all must equal.
Candidates come as stored (compact.py: float32, float16 or int8), decoded a chunk at a time. Each head
builds its own (`head.scorer(candidates)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ann import FaissIndex, Search
from .compact import BLOCK, Candidates

RankKey = Callable[[Tensor], Tensor]  # logits (N, C) -> one ranking value per candidate (N,)


class ConcatParams(Protocol):
    """What `ConcatScorer` reads of a concat head (models/components/heads.py: ConcatHead)."""

    embed_dim: int
    fc1: nn.Linear  # (4d -> h), columns in blocks [u | v | u*v | |u-v|]
    fc2: nn.Linear  # (h -> C)


class DotParams(Protocol):
    """What `DotScorer` reads of a dot head (models/components/heads.py: DotHead)."""

    normalize: bool
    scale: Tensor  # ()
    bias: Tensor  # ()


def single_output(logits: Tensor) -> Tensor:
    """The default ranking key: the one logit of a binary or regression head, (N, 1) -> (N,)."""
    if logits.shape[-1] != 1:
        raise ValueError(
            f"the head has {logits.shape[-1]} outputs; ranking needs one score per candidate: "
            "pass a rank key (e.g. the probability of one label; `--label` on the command line)"
        )
    return logits[:, 0]


@torch.inference_mode()
def naive_logits(head: nn.Module, u: Tensor, candidates: Tensor, chunk_size: int = 16384) -> Tensor:
    """head(u, v) for every candidate v, building the head's input per pair: (d,), (N, d) -> (N, C).

    Chunked only to cap memory (a (chunk, 4d) feature block for the concat head).
    """
    blocks = []
    for start in range(0, candidates.shape[0], chunk_size):
        v = candidates[start : start + chunk_size]  # (c, d)
        blocks.append(head(u.expand_as(v), v))  # (c, C)
    return torch.cat(blocks)


def as_candidates(candidates: Tensor | Candidates) -> Candidates:
    return candidates if isinstance(candidates, Candidates) else Candidates(candidates.detach().float())


def sample_rows(n: int, count: int) -> Tensor:
    """`count` row numbers spread evenly over [0, n): a training sample that sees the whole corpus even
    when its file is sorted (by source, by topic)."""
    return torch.linspace(0, n - 1, min(n, count)).round().long().unique()


class ConcatScorer:
    """Decomposed ConcatHead over cached candidates; `logits(u)` equals `naive_logits` to float tolerance."""

    def __init__(self, head: ConcatParams, candidates: Tensor | Candidates, chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError(f"ConcatScorer: chunk_size must be >= 1, got {chunk_size}")
        d, self.chunk_size = head.embed_dim, chunk_size
        self.candidates = as_candidates(candidates)  # (N, d) as stored
        with torch.inference_mode():
            w1 = head.fc1.weight.detach().float()  # (h, 4d) = [W_u | W_v | W_p | W_d]
            self.w_u, w_v, self.w_p, w_d = (w.contiguous() for w in w1.split(d, dim=1))  # each (h, d)
            self.w_d_t = w_d.t().contiguous()  # (d, h): right operand of |u - V| @ W_d^T
            # The per-candidate term, once per corpus: (N, h) = V @ W_v^T + b1 (float32 whatever the store's
            # dtype: it is h wide, not d).
            b1 = head.fc1.bias.detach().float()
            self.cand_term = torch.cat(
                [torch.addmm(b1, v, w_v.t()) for _, v in self.candidates.chunks(BLOCK)]
            )
            self.w2_t = head.fc2.weight.detach().float().t().contiguous()  # (h, C)
            self.b2 = head.fc2.bias.detach().float()  # (C,)

    def __len__(self) -> int:
        return len(self.candidates)

    def _query(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u = u.float()
        return u, self.w_u @ u, (self.w_p * u).t()  # W_u·u (h,) and (W_p ⊙ u)^T (d, h), once per query

    def _block(self, u, q_term, wpu_t, v, cand_term, out, hid, dif) -> None:
        """out (c, C) = the head's logits for rows v (c, d) whose per-candidate term is cand_term (c, h)."""
        torch.addmm(cand_term, v, wpu_t, out=hid)  # (c, h)
        torch.sub(v, u, out=dif).abs_()  # (c, d)
        hid.addmm_(dif, self.w_d_t).add_(q_term).relu_()
        torch.addmm(self.b2, hid, self.w2_t, out=out)  # (c, C)

    @torch.inference_mode()
    def logits(self, u: Tensor) -> Tensor:
        """u (d,) -> (N, C), the head's logits for (u, v) over every cached candidate v."""
        u, q_term, wpu_t = self._query(u)
        n, c = len(self), self.chunk_size
        out = torch.empty(n, self.b2.shape[0])  # (N, C)
        hidden = torch.empty(min(c, n), self.w_d_t.shape[1])  # (c, h), reused across chunks
        diff = torch.empty(min(c, n), u.shape[0])  # (c, d)
        for start, v in self.candidates.chunks(c):
            # Chunks keep V[start:stop] and |u - V| hot in cache between the two GEMMs.
            stop = start + v.shape[0]
            rows = slice(0, stop - start)
            self._block(
                u, q_term, wpu_t, v, self.cand_term[start:stop], out[start:stop], hidden[rows], diff[rows]
            )
        return out

    @torch.inference_mode()
    def logits_of(self, u: Tensor, idx: Tensor) -> Tensor:
        """u (d,), candidate rows idx (M,) -> (M, C): the same logits for a subset (a shortlist)."""
        u, q_term, wpu_t = self._query(u)
        m = idx.shape[0]
        out = torch.empty(m, self.b2.shape[0])
        hidden, diff = torch.empty(m, self.w_d_t.shape[1]), torch.empty(m, u.shape[0])
        self._block(u, q_term, wpu_t, self.candidates.take(idx), self.cand_term[idx], out, hidden, diff)
        return out

    def topk(self, u: Tensor, k: int, key: RankKey = single_output) -> tuple[Tensor, Tensor]:
        """The k candidates with the highest `key(logits)`: (logits (k, C), indices (k,)), best first."""
        logits = self.logits(u)
        idx = key(logits).topk(min(k, len(self))).indices
        return logits[idx], idx


def cosine_index(candidates: Candidates, search: Search | None, normalize: bool = True) -> FaissIndex:
    """A faiss index over the (normalised) candidates in the store's dtype: the one saved with the store
    if it has it, else built a block at a time."""

    def prepare(x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if normalize else x

    n = len(candidates)
    index_search = search or Search()
    key = index_search.factory(candidates.dtype, n)
    if normalize and key in candidates.indexes:
        return FaissIndex.load(candidates.indexes[key], key, index_search)
    sample = prepare(candidates.take(sample_rows(n, index_search.train_rows(n))))
    blocks = (prepare(v) for _, v in candidates.chunks(BLOCK))
    return FaissIndex.build(blocks, candidates.dim, n, candidates.dtype, index_search, sample)


class DotScorer:
    """DotHead over cached candidates with a faiss inner-product index (exact unless `search` says)."""

    def __init__(
        self, head: DotParams, candidates: Tensor | Candidates, search: Search | None = None
    ) -> None:
        self.normalize = head.normalize
        self.scale, self.bias = float(head.scale.detach()), float(head.bias.detach())
        self.index = cosine_index(as_candidates(candidates), search, self.normalize)

    def __len__(self) -> int:
        return len(self.index)

    def topk(self, u: Tensor, k: int, key: RankKey = single_output) -> tuple[Tensor, Tensor]:
        """(logits (k, 1), indices (k,)), best first; `key` must be increasing in the logit (1 output)."""
        q = u.detach().float().reshape(1, -1)
        q = F.normalize(q, dim=-1) if self.normalize else q
        # A negative learned scale ranks by the smallest inner product: search with -q instead.
        sign = -1.0 if self.scale < 0 else 1.0
        sims, idx = self.index.search(sign * q, min(k, len(self)))
        return (self.scale * sign * sims + self.bias).unsqueeze(-1), idx


class TwoStage:
    """The concat head over a shortlist: the M candidates nearest the query by cosine (the same student's
    embeddings, an exact or ANN index), re-scored exactly; the top k of those."""

    def __init__(
        self,
        concat: ConcatScorer,
        shortlist: int,
        search: Search | None = None,
        index: FaissIndex | None = None,
    ) -> None:
        """index: a cosine index over the same candidates already built (else built from `search`)."""
        if shortlist < 1:
            raise ValueError(f"two-stage shortlist must be >= 1, got {shortlist}")
        self.concat, self.shortlist = concat, shortlist
        self.index = index if index is not None else cosine_index(concat.candidates, search)

    def __len__(self) -> int:
        return len(self.concat)

    def topk(self, u: Tensor, k: int, key: RankKey = single_output) -> tuple[Tensor, Tensor]:
        _, short = self.index.search(F.normalize(u.float(), dim=-1), min(self.shortlist, len(self)))
        logits = self.concat.logits_of(u, short)
        best = key(logits).topk(min(k, short.shape[0])).indices
        return logits[best], short[best]
