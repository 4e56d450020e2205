"""Read one GLUE `.tsv` / `.tsv.gz` file into columns, with the malformed-row policy.

Real GLUE files carry a few broken rows (QQP, MNLI): those are skipped and counted. A file with more
than `max_bad_rows` of them, or more than `max_bad_fraction` of its rows, is not "a few": it is the
wrong file or a broken copy, so it raises naming the file and the first bad line.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .tasks import TaskSpec

log = logging.getLogger(__name__)


class GlueFormatError(ValueError):
    """A GLUE file that cannot be used as it is; the message names the file and line."""


@dataclass
class BadRows:
    count: int = 0
    first: list[str] = field(default_factory=list)  # "line N: reason", the first few

    def add(self, lineno: int | str, reason: str) -> None:
        """lineno: a text file's line number, or how another format places the row (e.g. "row 7")."""
        self.count += 1
        if len(self.first) < 5:
            where = f"line {lineno}" if isinstance(lineno, int) else lineno
            self.first.append(f"{where}: {reason}")


def find_split_file(glue_dir: Path, task: TaskSpec, split: str) -> Path | None:
    """The split's `.tsv` or `.tsv.gz`; both present is an error: one of them is stale, and which one is
    not ours to guess."""
    stem = task.splits[split].file
    found = [p for n in (f"{stem}.tsv", f"{stem}.tsv.gz") if (p := glue_dir / task.glue_dir / n).is_file()]
    if len(found) > 1:
        raise GlueFormatError(
            f"{found[0]} and {found[1]} are both there for split '{split}': remove (or move) the one that "
            "is not the data"
        )
    return found[0] if found else None


def _first_undecodable_line(path: Path) -> tuple[int, str]:
    """The 1-based line and reason of the first line that is not UTF-8: text files decode in chunks, so
    the line being read when the error surfaced can be thousands of lines before the bad byte."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return lineno, err.reason
    return 0, "undecodable"


def _open_text(path: Path):
    # utf-8-sig drops MRPC's BOM, which otherwise sticks to the first header name.
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _column_index(path: Path, header: list[str], task: TaskSpec) -> dict[str, int | list[int]]:
    fmt = task.tsv
    wanted = {"sentence1": fmt.sentence1, "sentence2": fmt.sentence2, "label": fmt.label}
    missing = [c for c in [*wanted.values(), *fmt.id] if c not in header]
    if missing:
        raise GlueFormatError(
            f"{path}: line 1 (header) lacks column(s) {missing} expected by task '{task.name}'; "
            f"found {header}. Is this the right file for the task?"
        )
    index: dict[str, int | list[int]] = {k: header.index(v) for k, v in wanted.items()}
    index["id"] = [header.index(c) for c in fmt.id]
    return index


def _parse_row(cells: list[str], idx: dict, task: TaskSpec) -> dict:
    s1, s2 = cells[idx["sentence1"]].strip(), cells[idx["sentence2"]].strip()
    if not s1 or not s2:
        raise ValueError("empty sentence")
    return {
        "id": "_".join(cells[i] for i in idx["id"]),
        "sentence1": s1,
        "sentence2": s2,
        "label": task.kind.parse_label(cells[idx["label"]].strip(), task.labels, task.score_range),
    }


def check_bad_rows(path: Path, bad: BadRows, total: int, max_bad_rows: int, max_bad_fraction: float) -> None:
    if bad.count == 0:
        return
    if bad.count > max_bad_rows or bad.count > max_bad_fraction * total:
        raise GlueFormatError(
            f"{path}: {bad.count} of {total} rows are malformed (limit: {max_bad_rows} rows and "
            f"{max_bad_fraction:.2%}); first at {bad.first[0]}. Others: {bad.first[1:]}"
        )
    log.warning("%s: skipped %d malformed row(s): %s", path, bad.count, "; ".join(bad.first))


def read_glue_tsv(
    path: Path, task: TaskSpec, max_bad_rows: int = 10, max_bad_fraction: float = 0.001
) -> dict[str, list]:
    """Columns `id`, `sentence1`, `sentence2`, `label` of one split file."""
    cols: dict[str, list] = {"id": [], "sentence1": [], "sentence2": [], "label": []}
    bad, total, lineno = BadRows(), 0, 1
    blank: list[int] = []  # blank lines so far: rows only if a row follows (a trailing newline is none)
    try:
        with _open_text(path) as fh:
            header = fh.readline().rstrip("\r\n").split("\t")
            idx = _column_index(path, header, task)
            for lineno, line in enumerate(fh, start=2):
                if not line.strip():
                    blank.append(lineno)
                    continue
                for empty in blank:
                    bad.add(empty, "blank line")
                total += 1 + len(blank)
                blank = []
                _add_row(cols, bad, lineno, line.rstrip("\r\n").split("\t"), header, idx, task)
    except UnicodeDecodeError as err:
        bad_line, reason = _first_undecodable_line(path)
        raise GlueFormatError(f"{path}: line {bad_line}: not UTF-8 text ({reason})") from err
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise GlueFormatError(
            f"{path}: line {lineno + 1}: the gzip archive is truncated or corrupt ({err}); copy it again"
        ) from err
    check_bad_rows(path, bad, total, max_bad_rows, max_bad_fraction)
    check_unique_ids(path, cols["id"])
    return cols


def _add_row(cols: dict, bad: BadRows, lineno: int, cells: list[str], header: list[str], idx, task) -> None:
    if len(cells) != len(header):
        bad.add(lineno, f"{len(cells)} columns, header has {len(header)}")
        return
    try:
        row = _parse_row(cells, idx, task)
    except ValueError as err:
        bad.add(lineno, str(err))
        return
    for key, value in row.items():
        cols[key].append(value)


def check_unique_ids(path: Path, ids: list[str]) -> None:
    # Teacher logits are joined to rows by id, so an id must name one row only.
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise GlueFormatError(f"{path}: example id '{dup}' appears more than once; ids must be unique")
