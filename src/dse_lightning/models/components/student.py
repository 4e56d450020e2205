"""The siamese DSE student: one shared encoder embeds each sentence, a pair head scores the pair."""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn

from dse_lightning.models.components.heads import ConcatHead, DotHead

HeadKind = Literal["concat", "dot"]
_HEADS: dict[str, type[nn.Module]] = {"concat": ConcatHead, "dot": DotHead}


def build_head(kind: HeadKind, embed_dim: int, num_outputs: int, **kwargs) -> nn.Module:
    """Build a pair head by name; extra kwargs go to its __init__ (e.g. hidden_dim, dropout)."""
    if kind not in _HEADS:
        raise ValueError(f"Unknown head kind {kind!r}; valid kinds are {list(get_args(HeadKind))}")
    return _HEADS[kind](embed_dim=embed_dim, num_outputs=num_outputs, **kwargs)


class SiameseStudent(nn.Module):
    """logits = head(encoder(a), encoder(b)) with the SAME encoder (shared weights) on both sides.

    Because the sides never attend to each other, `encode` can embed a corpus once and the head can
    then score any pair of cached embeddings: the point of DSE.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def encode(self, features: dict[str, Tensor]) -> Tensor:
        """Tokenizer output for one side -> (B, D). Keys other than the encoder inputs are ignored."""
        return self.encoder(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))

    def forward(self, a: dict[str, Tensor], b: dict[str, Tensor]) -> Tensor:
        u = self.encode(a)  # (B, D)
        v = self.encode(b)  # (B, D)
        return self.head(u, v)  # (B, num_outputs)
