"""Encode a sentence corpus once: each distinct sentence once, in length-sorted batches."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

EncodeFn = Callable[[list[str]], Tensor]  # a batch of sentences -> (B, d)


def length_order(sentences: list[str]) -> list[int]:
    """Indices of `sentences` shortest first (characters): the order `encode_corpus` batches them in."""
    return sorted(range(len(sentences)), key=lambda i: len(sentences[i]))


@torch.inference_mode()
def encode_corpus(
    encode_fn: EncodeFn, sentences: list[str], batch_size: int = 64, progress: bool = True
) -> Tensor:
    """(N, d) embeddings of `sentences`, row i for sentence i.

    Duplicates are encoded once. Sorting by length (characters, a cheap proxy for WordPieces) makes
    each batch's sentences similar in length, so little compute goes to padding.
    """
    if batch_size < 1:
        raise ValueError(f"encode_corpus: batch_size must be >= 1, got {batch_size}")
    unique = list(dict.fromkeys(sentences))
    order = length_order(unique)
    blocks = []
    for start in tqdm(range(0, len(order), batch_size), desc="encode", unit="batch", disable=not progress):
        blocks.append(encode_fn([unique[i] for i in order[start : start + batch_size]]).float())
    if not blocks:
        raise ValueError("encode_corpus: no sentences to encode")
    sorted_emb = torch.cat(blocks)  # (U, d) in length order
    unique_emb = torch.empty_like(sorted_emb)
    unique_emb[torch.tensor(order)] = sorted_emb  # back to first-occurrence order
    row = {s: i for i, s in enumerate(unique)}
    return unique_emb[torch.tensor([row[s] for s in sentences])]


def mean_pooled_encoder(model: str) -> EncodeFn:
    """A pretrained model (name or folder) with mean pooling over its last layer, through
    sentence-transformers: the usual sentence-embedding baseline (transfer eval, semantic search)."""
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(model)
    st = SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension(), "mean")])
    return lambda batch: st.encode(batch, convert_to_tensor=True, show_progress_bar=False)
