"""Teacher logits as data with an identity.

The artifact holds the logits keyed by example id plus their provenance (task, teacher checkpoint hash,
tokenizer, max length, data checksum). Loading checks the provenance against what the caller expects
and that every requested id is present, then returns the logits in the caller's order: rows are joined
by id, never by position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .utils.io import atomic_path

FORMAT = "dse-teacher-logits/1"


class LogitsMismatchError(ValueError):
    """Teacher logits that do not belong to this data, teacher or tokenizer."""


@dataclass(frozen=True)
class Provenance:
    task: str
    split: str
    teacher_checkpoint: str  # the teacher's identity (TeacherResult.identity): sha256 of its model.ckpt
    tokenizer: str  # tokenizer fingerprint
    max_length: int
    data_checksum: str

    def mismatches(self, other: Provenance) -> list[str]:
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: artifact has {theirs[k]!r}, expected {v!r}" for k, v in mine.items() if theirs[k] != v]


def save_logits(path: str | Path, ids: list[str], logits: torch.Tensor, provenance: Provenance) -> Path:
    if len(ids) != len(logits):
        raise ValueError(f"{len(ids)} ids but {len(logits)} rows of logits")
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate example ids in the logits to save")
    payload = {
        "format": FORMAT,
        "ids": list(ids),
        "logits": logits.float().cpu(),
        "provenance": asdict(provenance),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"teacher logits {path}: no such file; export them with stage=teacher")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise LogitsMismatchError(
            f"teacher logits {path}: unreadable ({err}); delete it and re-export"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LogitsMismatchError(f"teacher logits {path}: not a {FORMAT} artifact; delete it and re-export")
    return payload


@dataclass(frozen=True)
class KeyedLogits:
    """Logits (N, K) with the example id of each row; `for_ids` joins them to rows by id."""

    ids: list[str]
    values: torch.Tensor
    source: str  # where they came from, for errors

    def for_ids(self, ids: list[str]) -> torch.Tensor:
        """(len(ids), K) in the order of `ids`; refuses ids it has no row for."""
        row = {example_id: i for i, example_id in enumerate(self.ids)}
        missing = [i for i in ids if i not in row]
        if missing:
            raise LogitsMismatchError(
                f"teacher logits {self.source} lack {len(missing)} of {len(ids)} ids (first: {missing[:3]}); "
                "they were exported for other data"
            )
        return self.values[torch.tensor([row[i] for i in ids], dtype=torch.long)]

    def map(self, fn) -> KeyedLogits:
        """The same ids with fn(values), e.g. a binary teacher's logits reduced to the student's one."""
        return KeyedLogits(self.ids, fn(self.values), self.source)

    def cat(self, other: KeyedLogits) -> KeyedLogits:
        """These rows and `other`'s (ids must not repeat)."""
        if set(self.ids) & set(other.ids):
            raise ValueError(f"teacher logits {self.source} and {other.source} share example ids")
        return KeyedLogits(
            [*self.ids, *other.ids], torch.cat([self.values, other.values]), f"{self.source} + {other.source}"
        )


def read_logits(path: str | Path, expected: Provenance) -> KeyedLogits:
    """The artifact's logits by id, after checking its provenance. Raises on any mismatch."""
    path = Path(path)
    payload = _read(path)
    found = Provenance(**payload["provenance"])
    if problems := expected.mismatches(found):
        raise LogitsMismatchError(
            f"teacher logits {path} do not match this run:\n  "
            + "\n  ".join(problems)
            + "\nRe-export them from the matching teacher (stage=teacher)."
        )
    return KeyedLogits(list(payload["ids"]), payload["logits"], str(path))


def load_logits(path: str | Path, expected: Provenance, ids: list[str]) -> torch.Tensor:
    """Logits for `ids`, in that order: (len(ids), num_outputs). Raises on any mismatch."""
    return read_logits(path, expected).for_ids(ids)
