"""What physics allows: FLOPs per pair of the cross-encoder and of each cached-pair head.

A multiply-add is 2 FLOPs. T = WordPieces of a `[CLS] query [SEP] candidate [SEP]` pair, H = hidden
width, L = layers, d = student embedding width, h = concat hidden width, C = head outputs.

- teacher, per pair: 2·P_enc·T (every encoder weight is one multiply-add per token)
  + 4·L·T²·H (attention: Q·K^T and softmax(.)·V, T²·H multiply-adds each, per layer)
  + 2·(H² + H·C) (pooler and classifier, on [CLS] only).
- concat head, decomposed, per cached pair: (W_p ⊙ u)·v and W_d·|u-v| = 2·(2·d·h); |u-v| = 2·d;
  + W_u·u and + (W_v·v + b), ReLU = 3·h; fc2 = 2·h·C. W_v·v + b is per candidate, paid once at index time;
  W_u·u and W_p ⊙ u are per query, amortised over N.
- concat head, naive: fc1 over [u, v, u*v, |u-v|] = 2·(4·d·h); u*v and |u-v| = 3·d; ReLU = h; fc2 = 2·h·C.
- dot head: <u, v> over normalised vectors = 2·d (normalisation is per vector, paid once).
"""

from __future__ import annotations

from torch import nn


def teacher_flops_per_pair(model: nn.Module, tokens: float) -> dict:
    """FLOPs of one cross-encoder forward over a pair of `tokens` WordPieces (a BERT-style model)."""
    cfg = model.config
    encoder_params = sum(p.numel() for p in model.base_model.encoder.parameters())
    hidden, layers = cfg.hidden_size, cfg.num_hidden_layers
    dense = 2 * encoder_params * tokens
    attention = 4 * layers * tokens**2 * hidden
    head = 2 * (hidden * hidden + hidden * cfg.num_labels)
    return {
        "encoder_params": encoder_params,
        "mean_pair_tokens": tokens,
        "flops_per_pair": dense + attention + head,
        "dense_flops": dense,
        "attention_flops": attention,
    }


def concat_flops(d: int, h: int, c: int) -> dict[str, int]:
    return {
        "decomposed": 4 * d * h + 2 * d + 3 * h + 2 * h * c,
        "naive": 8 * d * h + 3 * d + h + 2 * h * c,
    }


def dot_flops(d: int) -> int:
    return 2 * d


def flop_bounds(teacher: dict, d_concat: int, hidden: int, outputs: int, d_dot: int) -> dict:
    """The speed-up each head could reach if every FLOP ran at the same rate as the teacher's."""
    concat = concat_flops(d_concat, hidden, outputs)
    per_pair = teacher["flops_per_pair"]
    return {
        "teacher": teacher,
        "concat": {
            "flops_per_pair": concat["decomposed"],
            "naive_flops_per_pair": concat["naive"],
            "naive_over_decomposed_flops": concat["naive"] / concat["decomposed"],
            "bound": per_pair / concat["decomposed"],
        },
        "dot": {"flops_per_pair": dot_flops(d_dot), "bound": per_pair / dot_flops(d_dot)},
    }


def encode_flops(batch_lengths: list[list[int]], layers: int, hidden: int, intermediate: int) -> int:
    """FLOPs of a BERT encoder's layers over batches of sentences (WordPieces each), every batch padded to
    its longest: per sentence and layer 2·(4·H² + 2·H·I)·T (the Q, K, V, output and FFN GEMMs) +
    4·T²·H (attention), T the batch's padded length."""
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    return sum(
        len(batch) * layers * (per_token * max(batch) + 4 * max(batch) ** 2 * hidden)
        for batch in batch_lengths
    )
