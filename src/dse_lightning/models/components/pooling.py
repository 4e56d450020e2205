"""Token pooling: a sentence vector from a transformer's per-layer hidden states.

DSE (Barkan et al. 2020) embeds a sentence as the concatenation of the masked mean of the top
k = 4 BERT layers, leaving out [CLS] (it keeps [SEP]). `top_k_mean` reproduces that; `cls`,
`mean` and `max` are the usual single-layer baselines.

Shapes: B = batch, L = sequence length, H = hidden size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

PoolingMode = Literal["cls", "mean", "max", "top_k_mean"]


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x (B, L, H) over the positions where mask (B, L) is nonzero -> (B, H).

    A row with no valid position gives zeros (the count is clamped to 1 instead of dividing by 0).
    """
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
    total = (x * weights).sum(dim=1)  # (B, H)
    count = weights.sum(dim=1).clamp(min=1.0)  # (B, 1)
    return total / count


def masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Max of x (B, L, H) over the positions where mask (B, L) is nonzero -> (B, H).

    Masked positions are set to -inf first so padding can never win the max, whatever its value.
    A row with no valid position gives zeros rather than -inf.
    """
    valid = mask.bool().unsqueeze(-1)  # (B, L, 1)
    pooled = x.masked_fill(~valid, float("-inf")).amax(dim=1)  # (B, H)
    has_token = valid.any(dim=1)  # (B, 1)
    return torch.where(has_token, pooled, torch.zeros_like(pooled))


class Pooling(nn.Module):
    """Pool HF `output_hidden_states=True` outputs into one vector per sentence.

    Modes:
      cls:        last layer at position 0 -> (B, H).
      mean:       masked mean of the last layer -> (B, H).
      max:        masked max of the last layer -> (B, H).
      top_k_mean: masked mean of each of the top k layers, concatenated LAST LAYER FIRST
                  (layer -1, -2, ..., -k) -> (B, k * H); with embeddings=True the embeddings' output
                  may be the k-th (a shallow stack pooled as deep as its source).
    With exclude_cls=True the token-pooling modes (mean, max, top_k_mean) ignore position 0,
    the [CLS] token, as the paper does; [SEP] is kept. Padding is always ignored.
    """

    def __init__(
        self, mode: PoolingMode = "top_k_mean", k: int = 4, exclude_cls: bool = True, embeddings: bool = False
    ) -> None:
        super().__init__()
        if mode not in get_args(PoolingMode):
            raise ValueError(f"Pooling: unknown mode {mode!r}; expected one of {get_args(PoolingMode)}")
        if k < 1:
            raise ValueError(f"Pooling: k must be >= 1, got {k}")
        self.mode = mode
        self.k = k
        self.exclude_cls = exclude_cls
        self.embeddings = embeddings  # top_k_mean may reach the embeddings' output (hidden_states[0])

    def output_dim(self, hidden_size: int) -> int:
        """Width of the pooled vector for a backbone of this hidden size."""
        return self.k * hidden_size if self.mode == "top_k_mean" else hidden_size

    def token_mask(self, attention_mask: Tensor) -> Tensor:
        """(B, L) mask of the positions that take part in pooling."""
        mask = attention_mask.bool()
        if self.exclude_cls:
            mask = mask.clone()
            mask[:, 0] = False
        return mask

    def forward(self, hidden_states: Sequence[Tensor], attention_mask: Tensor) -> Tensor:
        """hidden_states: (embeddings, layer_1, ..., layer_N), each (B, L, H); attention_mask (B, L)."""
        last = hidden_states[-1]  # (B, L, H)
        if self.mode == "cls":
            return last[:, 0]
        mask = self.token_mask(attention_mask)
        if self.mode == "mean":
            return masked_mean(last, mask)
        if self.mode == "max":
            return masked_max(last, mask)
        num_layers = len(hidden_states) - 1  # entry 0 is the embedding output, not a layer
        if self.k > num_layers + self.embeddings:
            also = " (and the embeddings' output)" if self.embeddings else ""
            raise ValueError(
                f"Pooling: top_k_mean with k={self.k} but the backbone has {num_layers} layers{also}"
            )
        layers = [hidden_states[-i] for i in range(1, self.k + 1)]  # last layer first
        return torch.cat([masked_mean(h, mask) for h in layers], dim=-1)  # (B, k * H)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, k={self.k}, exclude_cls={self.exclude_cls}, embeddings={self.embeddings}"
