"""Score one query embedding against N cached candidate embeddings with a student's own pair head.

Shapes: N = candidates, d = embedding width, h = the concat head's hidden width, C = its outputs.

- `ConcatScorer`: the ConcatHead's first layer over [u, v, u*v, |u-v|] splits by column block,
  fc1.weight = [W_u | W_v | W_p | W_d], so for every candidate v
      W·[u; v; u*v; |u-v|] + b = W_u·u + (W_v·v + b) + (W_p ⊙ u)·v + W_d·|u-v|.
  `W_v·v + b` is computed once per corpus (index time), `W_u·u` and `W_p ⊙ u` once per query, and the
  two terms left are GEMMs over candidate chunks: 2·d·h multiply-adds a pair instead of 4·d·h, and no
  (N, 4d) feature matrix.
- `DotScorer`: a faiss `IndexFlatIP` over the L2-normalised candidates; the head's scale and bias
  are applied to the k cosines it returns.
- `naive_logits`: the head itself over every (u, v) pair: the reference both must equal.
Each head builds its own (`head.scorer(candidates)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..models.components.heads import ConcatHead, DotHead

RankKey = Callable[[Tensor], Tensor]  # logits (N, C) -> one ranking value per candidate (N,)


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


class ConcatScorer:
    """Decomposed ConcatHead over cached candidates; `logits(u)` equals `naive_logits` to float tolerance."""

    def __init__(self, head: ConcatHead, candidates: Tensor, chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError(f"ConcatScorer: chunk_size must be >= 1, got {chunk_size}")
        d, self.chunk_size = head.embed_dim, chunk_size
        with torch.inference_mode():
            w1 = head.fc1.weight.detach().float()  # (h, 4d) = [W_u | W_v | W_p | W_d]
            self.w_u, w_v, self.w_p, w_d = (w.contiguous() for w in w1.split(d, dim=1))  # each (h, d)
            self.w_d_t = w_d.t().contiguous()  # (d, h): right operand of |u - V| @ W_d^T
            self.candidates = candidates.detach().float().contiguous()  # (N, d)
            # The per-candidate term, once per corpus: (N, h) = V @ W_v^T + b1.
            self.cand_term = torch.addmm(head.fc1.bias.detach().float(), self.candidates, w_v.t())
            self.w2_t = head.fc2.weight.detach().float().t().contiguous()  # (h, C)
            self.b2 = head.fc2.bias.detach().float()  # (C,)

    def __len__(self) -> int:
        return self.candidates.shape[0]

    @torch.inference_mode()
    def logits(self, u: Tensor) -> Tensor:
        """u (d,) -> (N, C), the head's logits for (u, v) over every cached candidate v."""
        u = u.float()
        q_term = self.w_u @ u  # (h,) = W_u·u, once per query
        wpu_t = (self.w_p * u).t()  # (d, h): (W_p ⊙ u)·v == W_p·(u*v)
        n, c = len(self), self.chunk_size
        out = torch.empty(n, self.b2.shape[0])  # (N, C)
        hidden = torch.empty(min(c, n), self.w_d_t.shape[1])  # (c, h), reused across chunks
        diff = torch.empty(min(c, n), u.shape[0])  # (c, d)
        for start in range(0, n, c):
            stop = min(start + c, n)
            v, hid, dif = self.candidates[start:stop], hidden[: stop - start], diff[: stop - start]
            # Chunks keep V[start:stop] and |u - V| hot in cache between the two GEMMs.
            torch.addmm(self.cand_term[start:stop], v, wpu_t, out=hid)  # (c, h)
            torch.sub(v, u, out=dif).abs_()  # (c, d)
            hid.addmm_(dif, self.w_d_t).add_(q_term).relu_()
            torch.addmm(self.b2, hid, self.w2_t, out=out[start:stop])  # (c, C)
        return out

    def topk(self, u: Tensor, k: int, key: RankKey = single_output) -> tuple[Tensor, Tensor]:
        """The k candidates with the highest `key(logits)`: (logits (k, C), indices (k,)), best first."""
        logits = self.logits(u)
        idx = key(logits).topk(min(k, len(self))).indices
        return logits[idx], idx


class DotScorer:
    """DotHead over cached candidates with a faiss exact inner-product index."""

    def __init__(self, head: DotHead, candidates: Tensor) -> None:
        import faiss  # imported here: only the dot head needs it

        self.normalize = head.normalize
        self.scale, self.bias = float(head.scale.detach()), float(head.bias.detach())
        vectors = self._prepare(candidates.detach().float())  # (N, d)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors.numpy())

    def _prepare(self, x: Tensor) -> Tensor:
        return (F.normalize(x, dim=-1) if self.normalize else x).contiguous()

    def __len__(self) -> int:
        return self.index.ntotal

    def topk(self, u: Tensor, k: int, key: RankKey = single_output) -> tuple[Tensor, Tensor]:
        """(logits (k, 1), indices (k,)), best first; `key` must be increasing in the logit (1 output)."""
        import faiss

        q = self._prepare(u.detach().float().reshape(1, -1)).numpy()  # (1, d)
        # One query is one sequential scan: a second OpenMP thread brings no speed, only a barrier
        # that stalls the scan (by ~10x, measured) whenever another process holds the other core.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            # A negative learned scale ranks by the smallest inner product: search with -q instead.
            sims, idx = self.index.search(-q if self.scale < 0 else q, min(k, len(self)))  # (1, k) each
        finally:
            faiss.omp_set_num_threads(threads)
        sims = torch.from_numpy(sims[0] * (-1.0 if self.scale < 0 else 1.0))
        return (self.scale * sims + self.bias).unsqueeze(-1), torch.from_numpy(idx[0].astype(np.int64))
