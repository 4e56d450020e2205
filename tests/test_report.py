"""The results tables: the terminal summary and `python -m dse_lightning.report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse_lightning.report import main, summary_table
from dse_lightning.results import RunResult

RESULTS = {  # a format-1 results.json (teacher_folds, no targets) as committed runs hold it
    "task": "mrpc",
    "stage": "all",
    "seed": 42,
    "data": {"train": 3668, "dev": 408},
    "teacher": {
        "name": "minilm",
        "key": "k",
        "params": 22_700_000,
        "metrics": {"acc": 0.8, "f1": 0.9},
        "train_time_s": 10,
    },
    "student": {
        "name": "dse",
        "alpha": 0.5,
        "teacher_folds": 1,
        "params": 25_700_000,
        "metrics": {"acc": 0.76, "f1": 0.9},
        "relative_degradation": {"acc": 0.05, "f1": 0.0, "mean": 0.025},
        "train_time_s": 20,
    },
}


def test_summary_table_rows() -> None:
    lines = summary_table(RunResult.from_json(RESULTS)).splitlines()
    assert lines[0] == "mrpc dev"
    assert lines[2].split()[:5] == ["teacher", "(minilm)", "22.7M", "0.8000", "0.9000"]
    assert lines[3].split()[-4:] == ["25.7M", "0.7600", "0.9000", "2.50%"]


def test_report_cli(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run_a"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(RESULTS))
    main([str(run)])
    out = capsys.readouterr().out.splitlines()
    assert out[2] == (
        "| run_a | mrpc | dse | 0.5 | 1 | mse | acc 0.8000 / f1 0.9000 "
        "| acc 0.7600 / f1 0.9000 | 2.50% | 10 | 20 |"
    )
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent")])
