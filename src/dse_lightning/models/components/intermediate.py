"""Intermediate-layer distillation: a shallower student's hidden states matched to a deeper model's.

TinyBERT (Jiao et al. 2020) and the distillation toolkits (TextBrewer's `hidden_mse`, torchdistill) match
the student's layer i to the source's layer m(i), token by token, on the same input. Here the source is a
frozen encoder that reads the sentences the student reads, one at a time: the 6-layer distilled student's
export (its folder holds its backbone), the backbone itself, or any BERT-style folder with the student's
tokenizer. The declared mapping `layers` pairs [student layer, source layer], 1-based (0: the embeddings'
output). The term is the masked mean squared error over the real tokens, averaged over the mapped pairs;
the student's loss adds `weight` times it to the logit loss (models/distill_module.py).

With `attention_weight` > 0 the mapped layers' self-attention distributions are matched too (TinyBERT's
attention loss; as MiniLM, the KL divergence from the source's distribution to the student's, per head and
real query token). Both models then run `ATTENTION`: eager attention that returns its weights before
dropout (transformers' eager kind returns them after it, zeros in a distribution the KL cannot read).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AttentionInterface, AutoModel, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

ATTENTION = "dse_attention_probs"  # the attention kind registered below, named in set_attn_implementation


def attention_probs(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[Tensor, Tensor]:
    """Eager attention (transformers' `eager_attention_forward`) returning the softmax before dropout:
    the output is the same, the weights are the distribution the attention term matches."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = F.softmax(scores, dim=-1)
    output = torch.matmul(F.dropout(probs, p=dropout, training=module.training), value)
    return output.transpose(1, 2).contiguous(), probs


AttentionInterface.register(ATTENTION, attention_probs)
AttentionMaskInterface.register(ATTENTION, eager_mask)  # an additive float mask, as eager attention takes


class HiddenStateMatch(nn.Module):
    """`forward(student_states, features[, student_attentions]) -> {"hidden"[, "attention"]}`: the terms
    for a batch of sentences; `total(terms)` is what the student's loss adds."""

    def __init__(
        self,
        source: str | PreTrainedModel,
        layers: Sequence[Sequence[int]],
        weight: float = 1.0,
        attention_weight: float = 0.0,
    ):
        super().__init__()
        model = source if isinstance(source, PreTrainedModel) else AutoModel.from_pretrained(str(source))
        self.source = model.eval().requires_grad_(False)
        self.layers = [(int(s), int(t)) for s, t in layers]
        self.weight, self.attention_weight = float(weight), float(attention_weight)
        if (
            not self.layers
            or min(self.weight, self.attention_weight) < 0
            or self.weight + self.attention_weight <= 0
        ):
            raise ValueError(
                f"intermediate: layers={layers} must map at least one layer, weight={weight} and "
                f"attention_weight={attention_weight} >= 0, one of them > 0"
            )
        if self.attentions:
            if not [p for p in self.layers if min(p) > 0]:
                raise ValueError(
                    f"intermediate.attention_weight: layers={layers} map no layer with attention weights "
                    "(0 is the embeddings)"
                )
            self.source.set_attn_implementation(ATTENTION)

    @property
    def attentions(self) -> bool:
        """Whether the student must return its attention weights (and run `ATTENTION`)."""
        return self.attention_weight > 0

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

    def forward(
        self,
        student_states: Sequence[Tensor],
        features: dict[str, Tensor],
        student_attentions: Sequence[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """The terms of a batch: `hidden` and, with attention_weight > 0, `attention`. student_states:
        (embeddings, layer 1, ...) each (S, L, H); student_attentions: layer 1, ... each (S, heads, L, L),
        of the sentences `features` holds."""
        inputs = {k: features[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in features}
        with torch.no_grad():
            out = self.source(**inputs, output_hidden_states=True, output_attentions=self.attentions)
        mask = features["attention_mask"].unsqueeze(-1).to(student_states[0].dtype)  # (S, L, 1)
        denominator = mask.sum() * student_states[0].size(-1)
        hidden = [
            ((student_states[i] - out.hidden_states[j]).pow(2) * mask).sum() / denominator
            for i, j in self.layers
        ]
        terms = {"hidden": torch.stack(hidden).mean()}
        if self.attentions:
            if student_attentions is None:
                raise ValueError(
                    "intermediate.attention_weight > 0: the student's attention weights are needed"
                )
            pairs = [
                (student_attentions[i - 1], out.attentions[j - 1]) for i, j in self.layers if min(i, j) > 0
            ]
            terms["attention"] = torch.stack([_attention_kl(s, t, mask) for s, t in pairs]).mean()
        return terms

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """What the student's loss adds: the weighted terms."""
        return self.weight * terms["hidden"] + self.attention_weight * terms.get("attention", 0.0)

    def describe(self) -> dict:
        out = {"kind": "hidden_mse", "layers": [list(p) for p in self.layers], "weight": self.weight}
        return out | (
            {"attention": "kl", "attention_weight": self.attention_weight} if self.attentions else {}
        )


def _attention_kl(student: Tensor, source: Tensor, mask: Tensor) -> Tensor:
    """KL(source || student) of each head's attention distribution over the keys, averaged over the heads
    and the real query tokens. mask: (S, L, 1); padded keys hold ~0 in both (the models mask them)."""
    log_student = student.clamp_min(1e-12).log()  # a masked key's weight is 0: keep its log finite
    kl = F.kl_div(log_student, source, reduction="none").sum(-1)  # (S, heads, L)
    rows = mask.squeeze(-1).unsqueeze(1)  # (S, 1, L): real query tokens
    return (kl * rows).sum() / (rows.sum() * student.size(1))
