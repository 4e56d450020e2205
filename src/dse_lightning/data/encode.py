"""Tokenisation into the two views, cached on disk with datasets' Arrow format.

- pair view (cross-encoder): one `[CLS] s1 [SEP] s2 [SEP]` encoding per example.
- sentence view (siamese students): each distinct sentence of the split tokenised once, and the pairs
  as indices into that table.
The cache key covers everything that changes the result: task, split, view, tokenizer, max length,
data checksum and subset; a change in any of them builds a new entry. An entry is built in a temp folder
and renamed into place, its `meta.json` (row count, truncations, sha256 of every file) written last; an
entry that fails that check on load is rebuilt with a warning. A file lock keeps two jobs from building
the same entry at once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
from transformers import PreTrainedTokenizerBase

from ..utils.io import atomic_dir, locked, sha256_json, tree_problems, tree_sha256, write_json

log = logging.getLogger(__name__)
CACHE_FORMAT = 2  # bump when the on-disk layout changes (2: meta.json holds the files' sha256)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of the tokenizer's full state (vocab, normaliser, special tokens), not of its name."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state = sorted(tokenizer.get_vocab().items())
    else:
        # Calls with truncation/padding mutate these two fields of the backend; they are not identity.
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return sha256_json([type(tokenizer).__name__, state, tokenizer.padding_side])


def cache_entry(cache_dir: Path, key_fields: dict) -> Path:
    key = sha256_json({**key_fields, "format": CACHE_FORMAT})[:20]
    return (
        Path(cache_dir)
        / "tokenized"
        / key_fields["task"]
        / f"{key_fields['split']}.{key_fields['view']}.{key}"
    )


def _count_truncated(tokenizer, first: list[str], second: list[str] | None, max_length: int) -> int:
    ids = tokenizer(first, second, truncation=False)["input_ids"]
    return sum(len(x) > max_length for x in ids)


def encode_pairs(raw: datasets.Dataset, tokenizer, max_length: int) -> tuple[datasets.DatasetDict, int]:
    def tok(batch):
        return tokenizer(batch["sentence1"], batch["sentence2"], truncation=True, max_length=max_length)

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
    pairs = datasets.Dataset.from_dict(
        {
            "id": list(raw["id"]),
            "label": list(raw["label"]),
            "a": [index[s] for s in first],
            "b": [index[s] for s in second],
        }
    )
    truncated = _count_truncated(tokenizer, texts, None, max_length)
    return datasets.DatasetDict(pairs=pairs, sentences=sentences), truncated


def _entry_problem(entry: Path) -> str | None:
    """Why a cache entry cannot be used as it is (None: complete and intact)."""
    meta_file = entry / "meta.json"
    if not meta_file.is_file():
        return "no meta.json" if entry.exists() else "absent"
    try:
        meta = json.loads(meta_file.read_text())
        problems = tree_problems(entry / "data", meta["sha256"])
    except (ValueError, KeyError) as err:
        return f"unreadable meta.json ({err})"
    return "; ".join(problems) or None


def _build(raw_fn, key_fields: dict, entry: Path, tokenizer, max_length: int) -> None:
    encode = encode_pairs if key_fields["view"] == "pair" else encode_sentences
    encoded, truncated = encode(raw_fn(), tokenizer, max_length)
    if truncated:
        log.warning(
            "%s/%s: %d input(s) longer than max_length=%d were truncated",
            key_fields["task"],
            key_fields["split"],
            truncated,
            max_length,
        )
    with atomic_dir(entry) as tmp:
        encoded.save_to_disk(str(tmp / "data"))
        meta = {**key_fields, "truncated": truncated, "rows": len(encoded["pairs"])}
        write_json(tmp / "meta.json", {**meta, "sha256": tree_sha256(tmp / "data")})  # last: the marker


def build_or_load(
    raw_fn, key_fields: dict, cache_dir: Path, tokenizer, max_length: int
) -> tuple[datasets.DatasetDict, dict]:
    """The cached encoding for `key_fields` and its meta.json, building it from `raw_fn()` if absent,
    incomplete or corrupted."""
    entry = cache_entry(cache_dir, key_fields)
    with locked(entry, f"{entry.name}: another job is tokenising it; waiting"):
        problem = _entry_problem(entry)
        if problem not in (None, "absent"):
            log.warning(
                "tokenisation cache %s is incomplete or corrupted (%s); rebuilding it", entry, problem
            )
        if problem is not None:
            _build(raw_fn, key_fields, entry, tokenizer, max_length)
        meta = json.loads((entry / "meta.json").read_text())
        return datasets.load_from_disk(str(entry / "data")), meta
