"""Tokenisation into the two views, cached on disk with datasets' Arrow format.

- pair view (cross-encoder): one `[CLS] s1 [SEP] s2 [SEP]` encoding per example.
- sentence view (siamese students): each distinct sentence of the split tokenised once, and the pairs
  as indices into that table.
The cache key covers everything that changes the result: task, split, view, tokenizer, max length,
data checksum and subset; a change in any of them builds a new entry. Entries live in the artifact
store (store.py: published atomically under a lock, verified on load); one that fails the check is rebuilt
with a warning. Its meta records the row count and the inputs truncated to max_length.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
from transformers import PreTrainedTokenizerBase

from ..store import Artifact, Store
from ..utils.io import sha256_json

log = logging.getLogger(__name__)
CACHE_FORMAT = 3  # bump when the on-disk layout changes (3: the artifact store's manifest.json)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of the tokenizer's full state (vocab, normaliser, special tokens), not of its name."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state = sorted(tokenizer.get_vocab().items())
    else:
        # Calls with truncation/padding mutate these two fields of the backend; they are not identity.
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return sha256_json([type(tokenizer).__name__, state, tokenizer.padding_side])


def _count_truncated(tokenizer, first: list[str], second: list[str] | None, max_length: int) -> int:
    ids = tokenizer(first, second, truncation=False)["input_ids"]
    return sum(len(x) > max_length for x in ids)


SWAP = "swap_"  # prefix of the swapped order's encoding (`[CLS] s2 [SEP] s1 [SEP]`), when both are encoded


def encode_pairs(
    raw: datasets.Dataset, tokenizer, max_length: int, both_orders: bool = False
) -> tuple[datasets.DatasetDict, int]:
    """`[CLS] s1 [SEP] s2 [SEP]` per row; `both_orders`: also `swap_input_ids`, ... of `s2, s1` (a teacher
    of a symmetric task trained and averaged over both, TeacherModule)."""

    def tok(batch):
        enc = tokenizer(batch["sentence1"], batch["sentence2"], truncation=True, max_length=max_length)
        if both_orders:
            swap = tokenizer(batch["sentence2"], batch["sentence1"], truncation=True, max_length=max_length)
            enc.update({SWAP + k: v for k, v in swap.items()})
        return enc

    pairs = raw.map(tok, batched=True, remove_columns=["sentence1", "sentence2"], desc="tokenise pairs")
    truncated = _count_truncated(tokenizer, list(raw["sentence1"]), list(raw["sentence2"]), max_length)
    return datasets.DatasetDict(pairs=pairs), truncated


def encode_sentences(raw: datasets.Dataset, tokenizer, max_length: int) -> tuple[datasets.DatasetDict, int]:
    # Each distinct sentence is tokenised once; pairs point at it by index (a, b).
    first, second = list(raw["sentence1"]), list(raw["sentence2"])
    index: dict[str, int] = {}
    for text in first + second:
        index.setdefault(text, len(index))
    texts = list(index)
    sentences = datasets.Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
        batched=True,
        desc="tokenise sentences",
    )
    extra = {c: list(raw[c]) for c in raw.column_names if c not in ("id", "label", "sentence1", "sentence2")}
    pairs = datasets.Dataset.from_dict(
        {
            "id": list(raw["id"]),
            "label": list(raw["label"]),
            "a": [index[s] for s in first],
            "b": [index[s] for s in second],
            **extra,  # has_label, when rows without a gold label are in the split
        }
    )
    truncated = _count_truncated(tokenizer, texts, None, max_length)
    return datasets.DatasetDict(pairs=pairs, sentences=sentences), truncated


def _build(store: Store, key: str, raw_fn, key_fields: dict, tokenizer, max_length: int) -> Artifact:
    if key_fields["view"] == "pair":
        both = key_fields.get("both_orders", False)
        encoded, truncated = encode_pairs(raw_fn(), tokenizer, max_length, both_orders=both)
    else:
        encoded, truncated = encode_sentences(raw_fn(), tokenizer, max_length)
    if truncated:
        log.warning(
            "%s/%s: %d input(s) longer than max_length=%d were truncated",
            key_fields["task"],
            key_fields["split"],
            truncated,
            max_length,
        )

    def write(tmp: Path) -> dict:
        encoded.save_to_disk(str(tmp / "data"))
        return {**key_fields, "truncated": truncated, "rows": len(encoded["pairs"])}

    return store.publish(key, write, writer=True)  # whoever builds it writes (prepare_data: one per node)


def build_or_load(
    raw_fn, key_fields: dict, cache_dir: Path, tokenizer, max_length: int
) -> tuple[datasets.DatasetDict, dict]:
    """The cached encoding for `key_fields` and its meta record, building it from `raw_fn()` if absent,
    incomplete or corrupted."""
    store = Store(Path(cache_dir) / "tokenized" / key_fields["task"], "tokenisation cache")
    digest = sha256_json({**key_fields, "format": CACHE_FORMAT})[:20]
    key = f"{key_fields['split']}.{key_fields['view']}.{digest}"
    entry = store.get_or_build(
        key, lambda: _build(store, key, raw_fn, key_fields, tokenizer, max_length), rebuild_corrupt=True
    )
    return datasets.load_from_disk(str(entry.path / "data")), entry.meta
