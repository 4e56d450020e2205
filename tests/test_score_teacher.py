"""teacher=scores: logits or scores from files (JSON lines, CSV), joined to the task's rows by id or by
sentence pair, published as a fitted teacher's logits; refused where a teacher model is needed."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from conftest import TINY_BERT, mrpc_rows, write_tsv
from dse_lightning.config import CONFIG_DIR, load_task
from dse_lightning.logits import read_logits
from dse_lightning.options import OptionError
from dse_lightning.pipeline.scores import ScoreTable, load_table
from dse_lightning.pipeline.teacher import teacher_data
from dse_lightning.train import train

MRPC = load_task("mrpc")
STUDENT = ["student.max_epochs=1", "student.encoder.hidden_dim=16"]  # one short epoch


def scores_cfg(tmp_path: Path, data: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "teacher=scores",
                f"data.dir={data}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                "logger=none",
                "trainer.enable_progress_bar=false",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.student.encoder.backbone = TINY_BERT
    return cfg


def gold_logit(row: list[str]) -> float:
    """A logit that agrees with an mrpc_rows row's label, different for every row."""
    return (1.0 if row[0] == "1" else -1.0) * (1 + int(row[1]) % 7)


def write_jsonl(path: Path, rows: list[dict], blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mrpc_logits(n: int) -> list[dict]:
    return [{"id": f"{r[1]}_{r[2]}", "logits": [0.5, 0.5 + gold_logit(r)]} for r in mrpc_rows(n)]


def test_jsonl_logits_by_id_become_the_teachers_logits_with_dev_metrics(
    tmp_path: Path, mrpc_dir: Path
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", mrpc_logits(48)[::-1])  # any order: joined by id
    dev_file = write_jsonl(tmp_path / "dev.jsonl", mrpc_logits(16))
    cfg = scores_cfg(
        tmp_path, mrpc_dir, "stage=teacher", f"teacher.train={train_file}", f"teacher.dev={dev_file}"
    )
    result = train(cfg)
    logits = read_logits(result.teacher.logits, teacher_data(cfg, MRPC).provenance(result.teacher.identity))
    expected = {r["id"]: r["logits"] for r in mrpc_logits(48)}
    torch.testing.assert_close(logits.values, torch.tensor([expected[i] for i in logits.ids]))
    assert result.teacher.metrics == {"acc": 1.0, "f1": 1.0} and result.teacher.checkpoint == ""
    assert [i["option"] for i in result.teacher.inputs] == ["teacher.train", "teacher.dev"]
    assert train(cfg).teacher.reused  # keyed by the files' content


def test_csv_scores_by_sentences_feed_a_student(tmp_path: Path, mrpc_dir: Path) -> None:
    """A binary `score` z is the logit of label 1: the teacher's logits [0, z], the student's target z."""
    lines = ["sentence1,sentence2,score"] + [f'"{r[3]}","{r[4]}",{gold_logit(r)}' for r in mrpc_rows(48)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = scores_cfg(tmp_path, mrpc_dir, f"teacher.train={tmp_path / 'train.csv'}", *STUDENT)
    result = train(cfg)
    logits = read_logits(result.teacher.logits, teacher_data(cfg, MRPC).provenance(result.teacher.identity))
    z = {f"{r[1]}_{r[2]}": gold_logit(r) for r in mrpc_rows(48)}
    torch.testing.assert_close(logits.values, torch.tensor([[0.0, z[i]] for i in logits.ids]))
    assert result.teacher.metrics == {} and set(result.student.metrics) == {"acc", "f1"}


def test_regression_scores_are_judged_on_dev(tmp_path: Path) -> None:
    header, rows = (
        ["index", "sentence1", "sentence2", "score"],
        [[str(i), f"A {i}.", f"B {i}.", str(i % 6)] for i in range(12)],
    )
    for split in ("train", "dev"):
        write_tsv(tmp_path / "glue" / "STS-B" / f"{split}.tsv", header, rows)
    write_jsonl(tmp_path / "train.jsonl", [{"id": r[0], "score": float(r[3])} for r in rows])
    write_jsonl(tmp_path / "dev.jsonl", [{"id": r[0], "score": -float(r[3])} for r in rows])
    files = [f"teacher.train={tmp_path / 'train.jsonl'}", f"teacher.dev={tmp_path / 'dev.jsonl'}"]
    cfg = scores_cfg(tmp_path, tmp_path / "glue", "task=stsb", "stage=teacher", *files)
    with pytest.raises(
        OptionError, match=r"dev\.jsonl: dev Pearson correlation -1\.000 is not above 0 on stsb/dev"
    ):
        train(cfg)


@pytest.mark.parametrize(
    ("choice", "refused"),
    [
        ("augment=pairs", "augment=pairs: runs the teacher's model"),
        ("targets=online", "targets=online: runs the teacher's model"),
        ("targets=folds", "targets=folds: runs the teacher's model"),
    ],
)
def test_a_teacher_without_a_model_is_refused_where_one_is_needed(
    tmp_path: Path, mrpc_dir: Path, choice: str, refused: str
) -> None:
    train_file = write_jsonl(tmp_path / "train.jsonl", mrpc_logits(48))
    cfg = scores_cfg(tmp_path, mrpc_dir, f"teacher.train={train_file}", choice)
    with pytest.raises(
        OptionError, match=rf"{refused} .*teacher=scores has none.*use targets=logits augment=none"
    ):
        train(cfg)
    assert not (tmp_path / "cache").exists()  # before any work


def join(path: Path, tmp_path: Path, n: int = 4) -> torch.Tensor:
    rows = mrpc_rows(n)
    data = {
        "id": [f"{r[1]}_{r[2]}" for r in rows],
        "sentence1": [r[3] for r in rows],
        "sentence2": [r[4] for r in rows],
    }
    table = ScoreTable(path, load_table(path, tmp_path / "loader"), MRPC)
    return table.join(datasets.Dataset.from_dict(data), "train").values


@pytest.mark.parametrize(
    ("rows", "blank_after", "error"),
    [
        (mrpc_logits(3), None, r"no row for 1 of the 4 pairs of mrpc/train \(first: '1003_2003'\)"),
        (mrpc_logits(4)[:2] + mrpc_logits(4)[1:], 1, r"line 4: '1001_2001' repeats line 3"),
        (
            [*mrpc_logits(3), {"id": "1003_2003", "logits": [0, "x"]}],
            None,
            r"line 4: logits 'x' is not a finite number",
        ),
        (
            [*mrpc_logits(3), {"id": "1003_2003", "logits": [0, 1, 2]}],
            None,
            r"line 4: logits \[0\.0, 1\.0, 2\.0\] is not a list of 2",
        ),
        (
            [{"id": "1000_2000", "logits": [0, 1], "score": 1}],
            None,
            r"needs either `logits` .* or `score`, not both",
        ),
    ],
)
def test_a_bad_scores_file_is_refused_naming_file_and_line(tmp_path: Path, rows, blank_after, error) -> None:
    path = write_jsonl(tmp_path / "scores.jsonl", rows, blank_after)
    with pytest.raises(OptionError, match=rf"scores\.jsonl: {error}"):
        join(path, tmp_path)


def test_csv_logit_columns_are_parsed_by_line(tmp_path: Path) -> None:
    lines = ["id,logit_0,logit_1", *(f"{r['id']},{r['logits'][0]},{r['logits'][1]}" for r in mrpc_logits(4))]
    path = tmp_path / "scores.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    torch.testing.assert_close(join(path, tmp_path), torch.tensor([r["logits"] for r in mrpc_logits(4)]))
    lines[3] = "1002_2002,0.5,n/a"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(OptionError, match=r"scores\.csv: line 4: logit_1 'n/a' is not a finite number"):
        join(path, tmp_path)
