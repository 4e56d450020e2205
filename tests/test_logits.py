"""Teacher-logits artifact: export -> verify round trip, join by id, and each mismatch error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from dse_lightning.logits import LogitsMismatchError, Provenance, load_logits, save_logits

PROV = Provenance(
    task="mrpc",
    split="train",
    teacher_checkpoint="abc",
    tokenizer="tok1",
    max_length=128,
    data_checksum="sha-data",
)
IDS = ["a", "b", "c", "d"]
LOGITS = torch.arange(8, dtype=torch.float32).reshape(4, 2)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return save_logits(tmp_path / "logits.pt", IDS, LOGITS, PROV)


def test_round_trip_joined_by_id(artifact: Path) -> None:
    assert torch.equal(load_logits(artifact, PROV, IDS), LOGITS)
    # Another order, and a subset: rows follow the ids asked for, not the file's order.
    assert torch.equal(load_logits(artifact, PROV, ["d", "a"]), LOGITS[[3, 0]])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", "rte"),
        ("teacher_checkpoint", "other"),
        ("tokenizer", "tok2"),
        ("max_length", 64),
        ("data_checksum", "sha-other"),
        ("split", "dev"),
    ],
)
def test_each_provenance_mismatch_is_refused(artifact: Path, field: str, value) -> None:
    expected = dataclasses.replace(PROV, **{field: value})
    with pytest.raises(LogitsMismatchError, match=rf"{field}: artifact has .*, expected {value!r}"):
        load_logits(artifact, expected, IDS)


def test_missing_ids_are_refused(artifact: Path) -> None:
    with pytest.raises(LogitsMismatchError, match=r"lack 2 of 3 ids \(first: \['x', 'y'\]\)"):
        load_logits(artifact, PROV, ["a", "x", "y"])


def test_corrupt_and_missing_files(artifact: Path, tmp_path: Path) -> None:
    artifact.write_bytes(artifact.read_bytes()[:100])  # truncated write
    with pytest.raises(LogitsMismatchError, match="unreadable .* delete it and re-export"):
        load_logits(artifact, PROV, IDS)
    torch.save({"ids": IDS}, tmp_path / "other.pt")
    with pytest.raises(LogitsMismatchError, match="not a dse-teacher-logits/1 artifact"):
        load_logits(tmp_path / "other.pt", PROV, IDS)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_logits(tmp_path / "absent.pt", PROV, IDS)


def test_save_refuses_duplicates_and_length_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate example ids"):
        save_logits(tmp_path / "x.pt", ["a", "a"], LOGITS[:2], PROV)
    with pytest.raises(ValueError, match="3 ids but 4 rows"):
        save_logits(tmp_path / "x.pt", IDS[:3], LOGITS, PROV)
    assert not (tmp_path / "x.pt").exists() and not list(tmp_path.glob(".x.pt*"))  # nothing half-written
