"""Intermediate-layer distillation: a shallower student's hidden states matched to a deeper model's.

TinyBERT (Jiao et al. 2020) and the distillation toolkits (TextBrewer's `hidden_mse`, torchdistill) match
the student's layer i to the source's layer m(i), token by token, on the same input. Here the source is a
frozen encoder that reads the sentences the student reads, one at a time: the 6-layer distilled student's
export (its folder holds its backbone), the backbone itself, or any BERT-style folder with the student's
tokenizer. The declared mapping `layers` pairs [student layer, source layer], 1-based (0: the embeddings'
output). The term is the masked mean squared error over the real tokens, averaged over the mapped pairs;
the student's loss adds `weight` times it to the logit loss (models/distill_module.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel


class HiddenStateMatch(nn.Module):
    """`forward(student_states, features) -> scalar`: the term for a batch of sentences."""

    def __init__(self, source: str | PreTrainedModel, layers: Sequence[Sequence[int]], weight: float = 1.0):
        super().__init__()
        model = source if isinstance(source, PreTrainedModel) else AutoModel.from_pretrained(str(source))
        self.source = model.eval().requires_grad_(False)
        self.layers = [(int(s), int(t)) for s, t in layers]
        self.weight = float(weight)
        if not self.layers or self.weight <= 0:
            raise ValueError(
                f"intermediate: layers={layers} must map at least one layer, weight={weight} > 0"
            )

    def check(self, student: PreTrainedModel) -> None:
        """Refuse a mapping the two models cannot meet: a layer past either's depth, another width or
        vocabulary (the same WordPieces must index both)."""
        s, t = student.config, self.source.config
        for i, j in self.layers:
            if not (0 <= i <= s.num_hidden_layers and 0 <= j <= t.num_hidden_layers):
                raise ValueError(
                    f"intermediate.layers: [{i}, {j}] but the student has {s.num_hidden_layers} layers and "
                    f"the source {t.num_hidden_layers} (0 is the embeddings)"
                )
        if (s.hidden_size, s.vocab_size) != (t.hidden_size, t.vocab_size):
            raise ValueError(
                f"intermediate.source: hidden size {t.hidden_size} and vocabulary {t.vocab_size}, the "
                f"student's {s.hidden_size} and {s.vocab_size}: the hidden states must match token for token"
            )

    def train(self, mode: bool = True) -> HiddenStateMatch:
        super().train(mode)
        self.source.eval()  # frozen: no dropout, whatever Lightning asks of the module
        return self

    def forward(self, student_states: Sequence[Tensor], features: dict[str, Tensor]) -> Tensor:
        """student_states: (embeddings, layer 1, ...) each (S, L, H), of the sentences `features` holds."""
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        with torch.no_grad():
            source_states = self.source(**inputs, output_hidden_states=True).hidden_states
        mask = features["attention_mask"].unsqueeze(-1).to(student_states[0].dtype)  # (S, L, 1)
        denominator = mask.sum() * student_states[0].size(-1)
        terms = [
            ((student_states[i] - source_states[j]).pow(2) * mask).sum() / denominator for i, j in self.layers
        ]
        return torch.stack(terms).mean()

    def describe(self) -> dict:
        return {"kind": "hidden_mse", "layers": [list(p) for p in self.layers], "weight": self.weight}
