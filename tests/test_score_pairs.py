"""`python -m dse_lightning.score_pairs`: a file of pairs scored by a student, as new column(s)."""

from __future__ import annotations

import csv
import json
import statistics
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


def readme_quickstart() -> tuple[str, list[str]]:
    """The README's "Your own pairs" section: its task file and its commands, as written."""
    from conftest import ROOT

    section = (ROOT / "README.md").read_text().split("## Your own pairs", 1)[1].split("\n## ", 1)[0]
    task = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    commands = section.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    return task, commands


@pytest.mark.slow  # the embedded MiniLM teacher and the dse student on a small CSV
def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    import os
    import subprocess

    from conftest import ROOT

    task, commands = readme_quickstart()
    (tmp_path / "my_conf" / "task").mkdir(parents=True)
    (tmp_path / "my_conf" / "task" / "pairs.yaml").write_text(task)
    columns = [{"question1": r["q1"], "question2": r["q2"], "is_duplicate": r["dup"]} for r in records(80)]
    write(tmp_path / "train.csv", columns[:48])
    write(tmp_path / "dev.csv", columns[48:64])
    write(
        tmp_path / "new.csv",
        [{"question1": c["question1"], "question2": c["question2"]} for c in columns[64:]],
    )
    import sys

    # `python` as in an activated environment: this interpreter's
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PATH": path}
    script = "set -e\n" + "\n".join(commands)
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (tmp_path / "scored.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert (tmp_path / "runs" / "pairs" / "student" / "export").is_dir()


def test_the_pair_file_bench_checks_the_scored_file_against_the_call(
    tokenizer_path: str, mrpc_dir: Path, tmp_path: Path
) -> None:
    from dse_lightning.bench.pair_file import main as pair_file_bench

    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    out = tmp_path / "bench"
    argv = ["--student", str(export), "--pairs", "1200", "--repeats", "2", "--tasks", "mrpc"]
    assert pair_file_bench([*argv, "--data-dir", str(mrpc_dir), "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    measured = result["measured"]
    assert measured["output_rows_equal_call"] is True
    assert len(measured["score_pairs_s"]) == len(measured["score_call_s"]) == 2
    assert measured["ratio"] == pytest.approx(
        statistics.median(measured["score_pairs_s"]) / statistics.median(measured["score_call_s"])
    )
    assert result["pairs"] == 1200 and "Ratio of medians" in (out / "results.md").read_text()
