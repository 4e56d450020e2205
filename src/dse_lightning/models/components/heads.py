"""Pair heads: score a sentence pair from its two embeddings u, v (B, D) each.

Both heads see the embeddings only, never the tokens, which is what makes the student siamese:
each sentence is encoded once and any pair is then scored cheaply. A head knows how an export records it
(`spec`, rebuilt with `from_spec`) and how to score cached candidates fast (`scorer`, embeddings/scorers.py),
so export and scoring need not know which head they hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from torch import Tensor, nn

from ...embeddings.scorers import ConcatScorer, DotScorer, TwoStage


class PairHead(nn.Module):
    """What every pair head gives: its name, its export spec and its fast scorer."""

    name = ""

    def spec(self) -> dict:
        """Constructor arguments with the class path: what `from_spec` rebuilds the head from."""
        raise NotImplementedError

    def scorer(self, candidates, chunk_size: int = 1024, search=None, shortlist: int | None = None):
        """A scorer of one query embedding against the (N, D) cached `candidates` (a tensor or
        embeddings.compact.Candidates; eval mode assumed). search: embeddings.ann.Search (how an index
        searches); shortlist: M for two-stage scoring (heads that are not a search themselves)."""
        raise NotImplementedError

    @staticmethod
    def from_spec(spec: dict) -> PairHead:
        return get_class(spec["_target_"])(**{k: v for k, v in spec.items() if k != "_target_"})

    def _target(self) -> dict:
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}"}


class ConcatHead(PairHead):
    """MLP over the InferSent/DSE pair features [u, v, u*v, |u-v|] (B, 4D) -> (B, num_outputs).

    fc1's input columns come in four D-wide blocks in this fixed order: u, v, u*v, |u-v|, so
    fc1.weight = [W_u | W_v | W_p | W_d]. Code that precomputes per-sentence terms (W_u u, W_v v)
    relies on that order; do not reorder the features.
    """

    name = "concat"

    def __init__(self, embed_dim: int, num_outputs: int, hidden_dim: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        if embed_dim < 1 or num_outputs < 1 or hidden_dim < 1:
            raise ValueError(
                f"ConcatHead: embed_dim, num_outputs and hidden_dim must be >= 1, "
                f"got {embed_dim}, {num_outputs}, {hidden_dim}"
            )
        self.embed_dim = embed_dim
        self.num_outputs = num_outputs
        self.fc1 = nn.Linear(4 * embed_dim, hidden_dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, num_outputs)

    @staticmethod
    def features(u: Tensor, v: Tensor) -> Tensor:
        """(B, D), (B, D) -> (B, 4D) = [u, v, u*v, |u-v|]; swapping u, v swaps only blocks 1 and 2."""
        return torch.cat([u, v, u * v, (u - v).abs()], dim=-1)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        hidden = self.dropout(self.act(self.fc1(self.features(u, v))))  # (B, hidden_dim)
        return self.fc2(hidden)  # (B, num_outputs)

    def spec(self) -> dict:
        hidden = self.fc1.out_features
        return {
            **self._target(),
            "embed_dim": self.embed_dim,
            "num_outputs": self.num_outputs,
            "hidden_dim": hidden,
        }

    def scorer(self, candidates, chunk_size: int = 1024, search=None, shortlist: int | None = None):
        full = ConcatScorer(self, candidates, chunk_size)
        if shortlist is None:
            if search is not None and search.mode != "exact":
                raise ValueError(
                    f"search mode {search.mode!r} with the concat head needs a two-stage shortlist "
                    "(--shortlist M): the head itself has no index to search"
                )
            return full
        return TwoStage(full, shortlist, search)


class DotHead(PairHead):
    """score = scale * <u, v> + bias (B, 1), with a learnable scalar scale and bias.

    With normalize=True (default) u and v are L2-normalised first, so <u, v> is the cosine in [-1, 1]
    and init_scale=5 gives logits in [-5, 5]; raw dot products of BERT pooled vectors are in the
    hundreds and would saturate the sigmoid at initialisation. Exactly symmetric in (u, v).
    Only for tasks with one output (binary, regression): a dot product is a single number.
    """

    name = "dot"

    def __init__(
        self, embed_dim: int, num_outputs: int = 1, init_scale: float = 5.0, normalize: bool = True
    ) -> None:
        super().__init__()
        if num_outputs != 1:
            raise ValueError(
                f"DotHead gives one score per pair, so it only supports binary and regression tasks "
                f"(num_outputs=1), got num_outputs={num_outputs}; use the concat head for multiclass"
            )
        self.embed_dim = embed_dim  # unused by the math; kept so every head is built the same way
        self.num_outputs = num_outputs
        self.normalize = normalize
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        if self.normalize:
            u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
        dot = (u * v).sum(dim=-1, keepdim=True)  # (B, 1)
        return self.scale * dot + self.bias

    def spec(self) -> dict:
        return {**self._target(), "embed_dim": self.embed_dim, "num_outputs": 1, "normalize": self.normalize}

    def scorer(self, candidates, chunk_size: int = 1024, search=None, shortlist: int | None = None):
        if shortlist is not None:
            raise ValueError("the dot head searches its index directly: a two-stage shortlist is for concat")
        return DotScorer(self, candidates, search)
