"""`python -m dse_lightning.score_pairs`: a file of pairs scored by a student, as new column(s)."""

from __future__ import annotations

import csv
from pathlib import Path

import datasets
import pytest
import torch

from dse_lightning.export import load_student
from dse_lightning.score_pairs import main
from test_file_source import records, write
from test_scoring import export_tiny


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_each_format_gets_the_scores_of_one_score_call(tokenizer_path: str, tmp_path: Path, fmt: str) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    rows = [{"id": f"{i:03d}", **r} for i, r in enumerate(records(30))]  # "007" stays a string
    pairs = write(tmp_path / f"pairs.{fmt}", rows)
    out = tmp_path / f"scored.{fmt}"
    columns = ["--sentence1", "q1", "--sentence2", "q2"]
    main(["--student", str(export), "--input", str(pairs), "--output", str(out), *columns])
    loader = {"tsv": "csv", "jsonl": "json"}.get(fmt, fmt)
    kwargs = {"delimiter": "\t"} if fmt == "tsv" else {}
    scored = datasets.load_dataset(loader, data_files=str(out), split="train", keep_in_memory=True, **kwargs)
    expected = load_student(export).score([r["q1"] for r in rows], [r["q2"] for r in rows])
    assert scored.column_names == ["id", "q1", "q2", "dup", "score"]
    assert torch.tensor(scored["score"]) == pytest.approx(expected, abs=1e-6)
    assert [str(x).zfill(3) for x in scored["id"]] == [r["id"] for r in rows]


def test_bad_rows_taken_columns_and_missing_files_write_nothing(tokenizer_path: str, tmp_path: Path) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    rows = records(10)
    rows[2]["q2"] = "  "
    pairs, out = write(tmp_path / "pairs.csv", rows), tmp_path / "scored.csv"
    args = ["--student", str(export), "--output", str(out), "--sentence1", "q1", "--sentence2", "q2"]
    with pytest.raises(
        ValueError, match=r"pairs\.csv: 1 row\(s\) without two sentences .* \(first: line 4\)"
    ):
        main([*args, "--input", str(pairs)])
    with pytest.raises(ValueError, match=r"no column\(s\) \['question'\]"):
        main([*args, "--input", str(pairs), "--sentence1", "question"])
    with pytest.raises(ValueError, match=r"already has column\(s\) \['dup'\]"):
        main([*args, "--input", str(write(tmp_path / "ok.csv", records(4))), "--column", "dup"])
    with pytest.raises(FileNotFoundError, match=r"--input .*none\.csv: no such file"):
        main([*args, "--input", str(tmp_path / "none.csv")])
    assert not out.exists() and not list(tmp_path.glob(".scored*"))


def test_a_csv_keeps_its_fields_as_written(tokenizer_path: str, tmp_path: Path) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("id,sentence1,sentence2\n007,NA,A man plays.\n010,The cat sleeps.,null\n")
    main(["--student", str(export), "--input", str(pairs), "--output", str(tmp_path / "out.csv")])
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["sentence1"], r["sentence2"]) for r in rows] == [
        ("007", "NA", "A man plays."),
        ("010", "The cat sleeps.", "null"),
    ]
