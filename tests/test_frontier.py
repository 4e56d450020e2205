"""The frontier report: quality rows from evaluated cells (cached), speed from the bench rows, table, plot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from dse_lightning.bench import frontier

GRAPHS = {"onnx-int8": "onnx/model_qint8.onnx", "openvino-int8": "openvino/model.xml"}  # already added
BENCH = {
    "rows": [{"teacher_pairs_per_s": 33.0}],
    "encode_speed": [
        {"layers": k, "backend": b, "sentences_per_s": 100.0 * (7 - k) * (3 if b == "onnx-int8" else 1)}
        for k in (6, 3, 2)
        for b in ("sentence-transformers", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
    ],
}


def test_frontier_rows_table_and_plot(tmp_path: Path, monkeypatch) -> None:
    models = list(frontier.SOURCES)
    cells = {
        (t, m): [tmp_path / f"{t}{i}s{s}" for s in range(3)]
        for t in ("mrpc", "stsb")
        for i, m in enumerate(models)
    }
    cells["mrpc", "dse 3 layers, 3 epochs"] = []  # a variant run on STS-B only: no MRPC rows
    for cell in (c for group in cells.values() for c in group):
        (cell / "student" / "export").mkdir(parents=True)
    calls = []

    def fake_eval(export, task, backend):
        calls.append((export, backend))
        seed = int(str(export.parent.parent)[-1])
        drop = 0.01 if backend == "onnx-int8" else 0.0
        return {"acc": 0.8 - drop + 0.01 * seed} if task == "mrpc" else {"pearson": 0.85 - drop}

    monkeypatch.setattr(frontier, "_cells", lambda task, model: cells[(task, model)])
    monkeypatch.setattr(frontier, "evaluate_export", fake_eval)
    monkeypatch.setattr(frontier, "read_meta", lambda export, kind: {"onnx": GRAPHS})
    evaluations = tmp_path / "evaluations.json"
    rows = frontier.quality(["mrpc", "stsb"], evaluations)
    n = (2 * len(models) - 1) * 3  # (task, model) pairs with cells, x 3 backends
    assert len(rows) == n and len(calls) == n * 3
    assert [r["model"] for r in rows if r["task"] == "mrpc"].count("dse 3 layers, 3 epochs") == 0
    mrpc6 = next(r for r in rows if r["task"] == "mrpc" and r["layers"] == 6 and r["backend"] == "torch")
    assert mrpc6["score"] == pytest.approx(0.81) and mrpc6["seeds"] == 3 and mrpc6["score_std"] > 0
    assert frontier.quality(["mrpc", "stsb"], evaluations) == rows and len(calls) == n * 3  # cached
    keys = set(json.loads(evaluations.read_text()))
    assert len(keys) == n * 3 and "mrpc0s0|torch" in keys  # cells by their path relative to the record
    frontier.attach_speed(rows, BENCH)
    assert mrpc6["sentences_per_s"] == 100.0
    spread = next(r for r in rows if r["model"] == "dse 3 layers (2nd, 4th, 6th)" and r["backend"] == "torch")
    assert spread["sentences_per_s"] == 400.0  # timed by the 3-layer rows
    lines = frontier.table(rows)
    assert len(lines) == 2 + len(rows) and "| mrpc | dse 6 layers | torch | 3 | acc 0.8100 |" in lines[2]
    frontier.plot(rows, tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no encode_speed rows: run `make bench` first"):
        frontier.attach_speed(rows, {"rows": []})


def test_a_cell_without_its_export_counts_its_runs_metrics_for_torch_only(
    tmp_path: Path, monkeypatch
) -> None:
    """Exports are not in git: torch falls back to the run's own dev evaluation, int8 leaves the seed out."""
    cells = [tmp_path / f"s{s}" for s in range(3)]
    for cell in cells[:1]:
        (cell / "student" / "export").mkdir(parents=True)
    monkeypatch.setattr(frontier, "_cells", lambda task, depth: cells)
    monkeypatch.setattr(frontier, "evaluate_export", lambda export, task, backend: {"pearson": 0.5})
    monkeypatch.setattr(frontier, "read_meta", lambda export, kind: {"onnx": GRAPHS})
    run = SimpleNamespace(student=SimpleNamespace(metrics={"pearson": 0.8}))
    monkeypatch.setattr(frontier, "result", lambda cell: run)
    rows = [
        r for r in frontier.quality(["stsb"], tmp_path / "evaluations.json") if r["model"] == "dse 6 layers"
    ]
    torch_row, int8_row, openvino_row = rows
    assert openvino_row == {**int8_row, "backend": "openvino-int8"}
    assert torch_row["seeds"] == 3 and torch_row["score"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert (
        int8_row["seeds"] == 1 and int8_row["score"] == pytest.approx(0.5) and int8_row["score_std"] is None
    )
    shutil.rmtree(cells[0])  # once evaluated, a cell's served figures stay (evaluations.json)
    assert frontier.quality(["stsb"], tmp_path / "evaluations.json")[:3] == rows


def test_a_missing_graph_is_added_calibrated_on_the_tasks_train_sentences(
    tmp_path: Path, monkeypatch
) -> None:
    """An export evaluated by a backend it has no graph for gets its graphs first (OpenVINO's calibrated)."""
    cell = tmp_path / "s0"
    (cell / "student" / "export").mkdir(parents=True)
    added = []
    monkeypatch.setattr(frontier, "_cells", lambda task, depth: [cell])
    monkeypatch.setattr(frontier, "evaluate_export", lambda export, task, backend: {"pearson": 0.5})
    monkeypatch.setattr(frontier, "read_meta", lambda export, kind: {"onnx": {"onnx-int8": "x"}})
    monkeypatch.setattr(frontier, "calibration_inputs", lambda task: [f"{task} sentence"])
    monkeypatch.setattr(frontier, "add_onnx", lambda *args: added.append(args))
    frontier.quality(["stsb"], tmp_path / "evaluations.json")
    assert added and all(a[1:] == (["stsb sentence"], "stsb/train, seed 0") for a in added)
    assert len(added) == 1  # only openvino-int8 was missing; every model here is that one cell
