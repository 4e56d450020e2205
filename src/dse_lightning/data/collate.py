"""Per-batch dynamic padding for the two views."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from .encode import SWAP


def _labels(rows: list[dict], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([r["label"] for r in rows], dtype=dtype)


def _targets(rows: list[dict], batch: dict) -> dict:
    """Add the teacher's logits (B, K) when the rows carry them, and `has_label` (B,) when some rows
    have no gold label (pairs only the teacher labelled)."""
    if "teacher" in rows[0]:
        batch["teacher_logits"] = torch.tensor([r["teacher"] for r in rows], dtype=torch.float32)
    if "has_label" in rows[0]:
        batch["has_label"] = torch.tensor([r["has_label"] for r in rows], dtype=torch.bool)
    return batch


def _padding(pad_to: int | None) -> dict:
    """tokenizer.pad's arguments: to the longest row of the batch (dynamic), or to a fixed length."""
    return {"padding": "max_length", "max_length": pad_to} if pad_to else {"padding": True}


@dataclass
class PairCollator:
    """Pair view -> {"input_ids", "attention_mask", "token_type_ids": (B, L), "labels": (B,), "ids"}, and
    "swapped": the same keys of the `s2, s1` order (B, L') when the rows carry both orders."""

    tokenizer: PreTrainedTokenizerBase
    label_dtype: torch.dtype = torch.long
    pad_to: int | None = None  # every batch padded to this length (the original DSE code: 128)

    def _pad(self, feats: list[dict]) -> dict:
        return dict(self.tokenizer.pad(feats, return_tensors="pt", **_padding(self.pad_to)))

    def __call__(self, rows: list[dict]) -> dict:
        inputs = [
            {k: v for k, v in r.items() if k not in ("id", "label", "teacher", "has_label")} for r in rows
        ]
        feats = [{k: v for k, v in r.items() if not k.startswith(SWAP)} for r in inputs]
        batch = self._pad(feats)
        if SWAP + "input_ids" in inputs[0]:  # both orders encoded: the swapped one padded on its own
            batch["swapped"] = self._pad(
                [{k[len(SWAP) :]: v for k, v in r.items() if k.startswith(SWAP)} for r in inputs]
            )
        batch["labels"] = _labels(rows, self.label_dtype)
        batch["ids"] = [r["id"] for r in rows]
        return _targets(rows, batch)


@dataclass
class SentencePairCollator:
    """Sentence view -> the batch's distinct sentences, padded once, and (B,) indices into them.

    {"sentences": {"input_ids", "attention_mask", ...: (S, L)}, "a": (B,), "b": (B,), "labels", "ids"}
    """

    tokenizer: PreTrainedTokenizerBase
    sentences: datasets.Dataset
    label_dtype: torch.dtype = torch.long
    pair_max_length: int | None = None  # set: also the pair encoding, for an online cross-encoder teacher
    pad_to: int | None = None  # every batch padded to this length (the original DSE code: 128)

    def __call__(self, rows: list[dict]) -> dict:
        sids = sorted({r["a"] for r in rows} | {r["b"] for r in rows})
        local = {sid: i for i, sid in enumerate(sids)}
        cols = self.sentences[sids]  # column dict of the S distinct sentences
        keys = [k for k in cols if k != "text"]
        feats = [{k: cols[k][i] for k in keys} for i in range(len(sids))]
        padded = dict(self.tokenizer.pad(feats, return_tensors="pt", **_padding(self.pad_to)))
        batch = {
            "sentences": padded,
            "a": torch.tensor([local[r["a"]] for r in rows]),
            "b": torch.tensor([local[r["b"]] for r in rows]),
            "labels": _labels(rows, self.label_dtype),
            "ids": [r["id"] for r in rows],
        }
        if self.pair_max_length is not None:
            texts = cols["text"]
            first, second = [texts[local[r["a"]]] for r in rows], [texts[local[r["b"]]] for r in rows]
            pair = self.tokenizer(
                first,
                second,
                truncation=True,
                max_length=self.pair_max_length,
                padding=True,
                return_tensors="pt",
            )
            batch["pair"] = dict(pair)  # (B, L) as in the teacher's pair view
        return _targets(rows, batch)
