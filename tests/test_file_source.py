"""A task of your own files (`files:` in a task file of a user config folder): CSV, TSV, JSON Lines and
parquet read by datasets' loaders through a column mapping, rows checked as GLUE rows are; a hub-layout
dataset with its own column names and no id column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest

from conftest import make_cfg, mrpc_rows
from dse_lightning.config import USER_CONFIG_ENV, load_task
from dse_lightning.data.glue_reader import GlueFormatError
from dse_lightning.data.sources import resolve_source
from dse_lightning.train import train

FORMATS = ("csv", "tsv", "jsonl", "parquet")
TASK = """name: {name}
type: {type}
{labels}
files: {{sentence1: q1, sentence2: q2, label: {label}{fmt}}}
splits:
  train: {{file: {train}}}
  dev: {{file: {dev}}}
metrics:
  {metric}
monitor: {monitor}
"""
ACC = "acc: {_target_: torchmetrics.classification.BinaryAccuracy}"
PEARSON = "pearson: {_target_: torchmetrics.regression.PearsonCorrCoef}"
BINARY = {"type": "binary", "labels": 'labels: ["0", "1"]', "metric": ACC, "monitor": "acc"}
SCORE = {"type": "regression", "labels": "score_range: [0.0, 5.0]", "metric": PEARSON, "monitor": "pearson"}


def records(n: int, offset: int = 0) -> list[dict]:
    """Pairs under a user's own column names (q1, q2, dup), no id column."""
    return [{"q1": r[3], "q2": r[4], "dup": int(r[0])} for r in mrpc_rows(n + offset)[offset:]]


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".")
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


def user_task(conf: Path, name: str, train: Path, dev: Path, kind: dict = BINARY, **extra) -> None:
    fmt = f", format: {extra['format']}" if "format" in extra else ""
    text = TASK.format(name=name, train=train, dev=dev, label=extra.get("label", "dup"), fmt=fmt, **kind)
    (conf / "task").mkdir(parents=True, exist_ok=True)
    (conf / "task" / f"{name}.yaml").write_text(text)


@pytest.fixture
def my_pairs(tmp_path: Path, monkeypatch) -> Path:
    """A user config folder ($DSE_CONFIG_DIR) with one task per format over the same rows."""
    conf = tmp_path / "my_conf"
    for fmt in FORMATS:
        train = write(tmp_path / "data" / f"train.{fmt}", records(48))
        dev = write(tmp_path / "data" / f"dev.{fmt}", records(16, offset=100))
        user_task(conf, f"pairs_{fmt}", train, dev)
    monkeypatch.setenv(USER_CONFIG_ENV, str(conf))
    return conf


def test_every_format_gives_the_same_rows_with_ids_made_from_row_numbers(my_pairs: Path) -> None:
    loaded = {f: resolve_source(load_task(f"pairs_{f}"), None).load("train").to_dict() for f in FORMATS}
    assert all(rows == loaded["csv"] for rows in loaded.values())
    rows = loaded["csv"]
    assert rows["id"][:2] == ["train-0", "train-1"] and len(set(rows["id"])) == 48
    assert rows["label"] == [r["dup"] for r in records(48)] and rows["sentence1"][0] == records(1)[0]["q1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": "is_dup"}, r"train\.csv: no column\(s\) \['is_dup'\] \(task\.files names them\)"),
        (
            {"row": {"dup": 2}},
            r"train\.csv: 1 of 48 rows .* line 5: label '2' is not one of \['0', '1'\] \(columns q1, q2, dup",
        ),  # fmt: skip
        ({"row": {"q1": " "}}, r"train\.csv: 1 of 48 rows .* line 5: empty sentence \(columns q1, q2, dup\)"),
        ({"row": {"dup": 7.5}, "kind": SCORE}, r"line 5: score 7\.5 outside \[0\.0, 5\.0\]"),
        ({"format": "parquet"}, r"train\.csv: not a readable parquet file"),
    ],
)
def test_bad_rows_and_mappings_are_refused_before_training(
    tmp_path: Path, monkeypatch, change: dict, message: str
) -> None:
    rows = records(48)
    rows[3] |= change.get("row", {})  # the fourth data row: line 5 after the header
    train_file, dev = write(tmp_path / "train.csv", rows), write(tmp_path / "dev.csv", records(16, 100))
    extra = {k: v for k, v in change.items() if k in ("label", "format")}
    user_task(tmp_path / "conf", "mine", train_file, dev, change.get("kind", BINARY), **extra)
    monkeypatch.setenv(USER_CONFIG_ENV, str(tmp_path / "conf"))
    with pytest.raises(GlueFormatError, match=message):
        train(make_cfg(tmp_path, tmp_path, "run", "task=mine", "stage=teacher"))
    assert not list((tmp_path / "cache").rglob("*.ckpt"))  # nothing trained


@pytest.mark.slow  # three tiny teacher + student runs
def test_teacher_and_student_train_alike_from_csv_jsonl_and_parquet(my_pairs: Path, tmp_path: Path) -> None:
    runs = {
        fmt: train(make_cfg(tmp_path, tmp_path, f"run_{fmt}", f"task=pairs_{fmt}", "student=bilstm"))
        for fmt in ("csv", "jsonl", "parquet")
    }
    first = runs["csv"]
    assert first.data == {"train": 48, "dev": 16} and Path(first.student.export).is_dir()
    for run in runs.values():  # the same rows: the same teacher and student, whatever the format
        assert run.teacher.metrics == first.teacher.metrics and run.student.metrics == first.student.metrics


def test_a_hub_dataset_with_its_own_column_names_and_no_ids(tmp_path: Path, monkeypatch) -> None:
    """A local copy in the hub's layout (what `snapshot_download` leaves) of a dataset that is not GLUE."""
    import yaml

    root = tmp_path / "hub_copy"
    features = datasets.Features(
        {
            "query": datasets.Value("string"),
            "passage": datasets.Value("string"),
            "relevant": datasets.ClassLabel(names=["no", "yes"]),
        }
    )
    files = []
    for split, rows in (("train", records(48)), ("validation", records(16, 100))):
        columns = {"query": [r["q1"] for r in rows], "passage": [r["q2"] for r in rows]}
        columns["relevant"] = [r["dup"] for r in rows]
        (root / "default").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(columns, features=features).to_parquet(
            str(root / f"default/{split}.parquet")
        )
        files.append({"split": split, "path": f"default/{split}.parquet"})
    readme = {"configs": [{"config_name": "default", "data_files": files}]}
    (root / "README.md").write_text("---\n" + yaml.safe_dump(readme) + "---\n")
    task = """name: relevance
type: binary
labels: ["no", "yes"]
hub: {path: someone/relevance, name: default, sentence1: query, sentence2: passage, label: relevant, id: null}
splits: {train: {hub: train}, dev: {hub: validation}}
metrics: {acc: {_target_: torchmetrics.classification.BinaryAccuracy}}
monitor: acc
"""
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "relevance.yaml").write_text(task)
    monkeypatch.setenv(USER_CONFIG_ENV, str(tmp_path / "conf"))
    dev = resolve_source(load_task("relevance"), None, hub_dir=str(root)).load("dev")
    assert dev["id"][:2] == ["validation-0", "validation-1"]
    assert dev["sentence1"] == [r["q1"] for r in records(16, 100)] and dev["label"] == [
        r["dup"] for r in records(16, 100)
    ]


@pytest.mark.slow  # a tiny teacher and student
def test_a_test_split_is_evaluated_once_apart_from_dev(tmp_path: Path, monkeypatch) -> None:
    conf = tmp_path / "conf"
    train_file = write(tmp_path / "train.csv", records(48))
    dev, test = write(tmp_path / "dev.csv", records(16, 100)), write(tmp_path / "test.csv", records(12, 200))
    user_task(conf, "mine", train_file, dev)
    text = (conf / "task" / "mine.yaml").read_text()
    (conf / "task" / "mine.yaml").write_text(text.replace("  dev:", f"  test: {{file: {test}}}\n  dev:"))
    monkeypatch.setenv(USER_CONFIG_ENV, str(conf))
    task = load_task("mine")
    assert task.eval_splits == ["dev"] and task.test_splits == ["test"]  # dev alone selects the model
    result = train(make_cfg(tmp_path, tmp_path, "run", "task=mine", "student=bilstm", "distill.alpha=0"))
    assert set(result.teacher.test_metrics) == {"acc"} and set(result.student.test_metrics) == {"acc"}
    assert result.data == {"train": 48, "test": 12, "dev": 16}
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["student"]["test_metrics"] == result.student.test_metrics
    # the test split's own metrics: 12 rows, so an accuracy is a multiple of 1/12
    assert round(result.student.test_metrics["acc"] * 12, 4) == round(result.student.test_metrics["acc"] * 12)
