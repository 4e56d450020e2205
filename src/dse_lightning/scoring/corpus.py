"""Candidate and query files read as streams: one sentence per line, a corpus larger than memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path


def read_stream(path: str | Path, option: str, skip_blank: bool = True) -> Iterator[str]:
    """The non-blank lines of a UTF-8 text file, stripped, in file order; errors name the option, file
    and line. skip_blank=False: a blank or whitespace-only line is an error (queries: one answer per
    line, so a skipped line would shift every answer after it)."""
    path = Path(path)
    where = f"{option}{path}" if option.endswith("=") else f"{option} {path}"  # a config key, or a flag
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such file")
    found = False
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}, line {number}: not UTF-8 ({err.reason})") from err
            if line:
                found = True
                yield line
            elif not skip_blank:
                raise ValueError(f"{where}, line {number}: empty or whitespace-only line")
    if not found:
        raise ValueError(f"{where}: no sentences (expected one per line)")


def distinct(lines: Iterable[str]) -> Iterator[str]:
    """Each line once, at its first occurrence; remembers 16-byte digests, not the lines."""
    seen: set[bytes] = set()
    for line in lines:
        digest = hashlib.blake2b(line.encode(), digest_size=16).digest()
        if digest not in seen:
            seen.add(digest)
            yield line
