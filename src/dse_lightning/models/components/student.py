"""The siamese DSE student: one shared encoder embeds each sentence, a pair head scores the pair."""

from __future__ import annotations

from torch import Tensor, nn

from dse_lightning.models.components.encoders import SentenceEncoder
from dse_lightning.models.components.heads import PairHead


class SiameseStudent(nn.Module):
    """logits = head(encoder(a), encoder(b)) with the SAME encoder (shared weights) on both sides.

    Because the sides never attend to each other, `encode` can embed a corpus once and the head can
    then score any pair of cached embeddings: the point of DSE.
    """

    def __init__(self, encoder: SentenceEncoder, head: PairHead) -> None:
        super().__init__()
        # Checked here, before any training: every student must export and score without the training code.
        for part, base in ((encoder, SentenceEncoder), (head, PairHead)):
            if not isinstance(part, base):
                raise TypeError(
                    f"{type(part).__name__} is not a {base.__name__} (see models/components), so the student "
                    "could not be exported or scored; refused before training"
                )
        self.encoder = encoder
        self.head = head

    def encode(self, features: dict[str, Tensor]) -> Tensor:
        """Tokenizer output for one side -> (B, D). Keys other than the encoder inputs are ignored."""
        return self.encoder(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))

    def forward(self, a: dict[str, Tensor], b: dict[str, Tensor]) -> Tensor:
        u = self.encode(a)  # (B, D)
        v = self.encode(b)  # (B, D)
        return self.head(u, v)  # (B, num_outputs)


class MultiTaskStudent(nn.Module):
    """One shared encoder, one pair head per task (`tasks=`): a sentence is embedded once and every task's
    head scores the same embeddings."""

    def __init__(self, encoder: SentenceEncoder, heads: dict[str, PairHead]) -> None:
        super().__init__()
        for head in heads.values():
            SiameseStudent(encoder, head)  # the same checks as a one-task student's, per head
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def encode(self, features: dict[str, Tensor]) -> Tensor:
        return self.encoder(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))

    def task(self, name: str) -> SiameseStudent:
        """The student of one task: the shared encoder with that task's head (same modules, not copies)."""
        return SiameseStudent(self.encoder, self.heads[name])
