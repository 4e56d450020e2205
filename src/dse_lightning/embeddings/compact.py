"""Candidate embeddings as stored: float32, float16 or int8 (faiss's 8-bit scalar quantizer).

d = 1,536 float32 (the paper student's top-4 pooling of MiniLM) is 6 GB per million candidates; float16
halves it, int8 quarters it. `Candidates` keeps the rows in the stored dtype and decodes them to float32
a block at a time, so the concat scorer reads a compact store without ever holding it in float32.

int8 is faiss's `ScalarQuantizer(QT_8bit)`: per dimension, its min and range over the corpus, 256 levels
between them (`trained` holds the 2·d floats). faiss encodes and decodes it; we only store the codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DTYPES = ("float32", "float16", "int8")
BYTES = {"float32": 4, "float16": 2, "int8": 1}
BLOCK = 65536  # rows decoded (or added to an index) at a time: a few hundred MB of float32 at most


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"embedding dtype {dtype!r}: expected one of {DTYPES}")
    return dtype


def _quantizer(dim: int, trained: Tensor | None = None):
    import faiss  # imported here: only int8 stores and the dot head need it

    sq = faiss.ScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit)
    if trained is not None:
        faiss.copy_array_to_vector(trained.numpy().astype(np.float32), sq.trained)
        sq.is_trained = True  # faiss's Python wrapper exposes the flag on the index only
    return sq


@dataclass
class Candidates:
    """(N, d) candidate embeddings in `dtype`; int8 rows are faiss SQ8 codes with `trained` (2·d,)."""

    data: Tensor  # (N, d): float32 | float16 | uint8
    dtype: str = "float32"
    trained: Tensor | None = None
    # faiss indexes over the L2-normalised rows saved with the store, by factory string (ann.py)
    indexes: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        if self.data.dim() != 2:
            raise ValueError(f"Candidates: expected (N, d) rows, got shape {tuple(self.data.shape)}")
        if (self.dtype == "int8") != (self.trained is not None):
            raise ValueError("Candidates: int8 rows need the quantizer's trained ranges, other dtypes none")
        self._sq = _quantizer(self.dim, self.trained) if self.dtype == "int8" else None

    @classmethod
    def encode(cls, x: Tensor, dtype: str = "float32") -> Candidates:
        """Store float rows (N, d) as `dtype`; int8 learns its per-dimension ranges from these rows."""
        return cls.encode_blocks(lambda: iter([x]), dtype)

    @classmethod
    def encode_blocks(cls, blocks: Callable[[], Iterator[Tensor]], dtype: str = "float32") -> Candidates:
        """Store the float rows that `blocks()` yields, block by block, as `dtype`: only the stored rows
        and one float block are held at a time (int8 reads the blocks twice: ranges, then codes)."""
        if check_dtype(dtype) != "int8":
            cast = torch.float16 if dtype == "float16" else torch.float32
            return cls(torch.cat([b.detach().to(cast) for b in blocks()]).contiguous(), dtype)
        lo = hi = None
        for b in blocks():  # faiss's QT_8bit training (RS_minmax): per dimension [min, max - min]
            b_lo, b_hi = b.detach().float().amin(0), b.detach().float().amax(0)
            lo, hi = (b_lo, b_hi) if lo is None else (torch.minimum(lo, b_lo), torch.maximum(hi, b_hi))
        trained = torch.cat([lo, hi - lo])
        sq = _quantizer(len(lo), trained)
        codes = [sq.compute_codes(b.detach().float().contiguous().numpy()) for b in blocks()]
        return cls(torch.from_numpy(np.concatenate(codes)), dtype, trained)

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def dim(self) -> int:
        return self.data.shape[1]

    @property
    def nbytes(self) -> int:
        """What the rows take in memory and on disk (the int8 ranges aside: 8·d bytes)."""
        return self.data.numel() * self.data.element_size()

    def _decode(self, block: Tensor) -> Tensor:
        if self.dtype == "float32":
            return block
        if self.dtype == "float16":
            return block.float()
        return torch.from_numpy(self._sq.decode(block.numpy()))

    def rows(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Rows [start, stop) as float32 (a view for float32 stores, a decoded copy otherwise)."""
        return self._decode(self.data[start:stop])

    def take(self, idx: Tensor) -> Tensor:
        """The rows at `idx` (M,) as float32 (M, d)."""
        return self._decode(self.data[idx].contiguous())

    def chunks(self, size: int) -> Iterator[tuple[int, Tensor]]:
        """(start, float32 rows) for consecutive blocks of `size` rows."""
        for start in range(0, len(self), size):
            yield start, self.rows(start, start + size)

    def tensors(self) -> dict[str, Tensor]:
        """What a store file holds: the rows, and the int8 ranges."""
        out = {"embeddings": self.data.contiguous()}
        return out | ({"sq_trained": self.trained} if self.trained is not None else {})

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], dtype: str) -> Candidates:
        return cls(tensors["embeddings"], dtype, tensors.get("sq_trained"))
