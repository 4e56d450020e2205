"""Candidate and query files read as streams: one sentence per line, a corpus larger than memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path


def read_stream(path: str | Path, option: str) -> Iterator[str]:
    """The non-blank lines of a UTF-8 text file, stripped, in file order; errors name the option, file
    and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: no such file")
    found = False
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise ValueError(f"{option} {path}, line {number}: not UTF-8 ({err.reason})") from err
            if line:
                found = True
                yield line
    if not found:
        raise ValueError(f"{option} {path}: no sentences (expected one per line)")


def distinct(lines: Iterable[str]) -> Iterator[str]:
    """Each line once, at its first occurrence; remembers 16-byte digests, not the lines."""
    seen: set[bytes] = set()
    for line in lines:
        digest = hashlib.blake2b(line.encode(), digest_size=16).digest()
        if digest not in seen:
            seen.add(digest)
            yield line
