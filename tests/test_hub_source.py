"""Hub-layout data offline (`data.hub_dir`): every task's hub schema loads, rows are validated like the
TSV reader's, and the errors name the dataset, split and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse_lightning.config import load_task
from dse_lightning.data.glue_reader import GlueFormatError
from dse_lightning.data.sources import HubSource, LocalSource, resolve_source
from hub_mirror import SCHEMAS, build_mirror


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return build_mirror(tmp_path_factory.mktemp("hub") / "glue", rows=16)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_task_loads_from_the_hub_layout(mirror: Path, name: str) -> None:
    task = load_task(name)
    source = resolve_source(task, data_dir=None, hub_dir=str(mirror))
    assert isinstance(source, HubSource)
    for split in task.splits:
        rows = source.load(split)
        assert set(rows.column_names) == {"id", "sentence1", "sentence2", "label"} and len(rows) > 0
        assert all(rows["sentence1"]) and all(isinstance(i, str) for i in rows["id"])
        if task.kind.class_logits:
            assert set(rows["label"]) <= set(range(len(task.labels)))
    assert source.describe("train") == f"hub:{mirror}/{name}[train]"


def test_real_mrpc_rows_match_the_tsv_reader(mirror: Path) -> None:
    task = load_task("mrpc")
    hub = resolve_source(task, None, str(mirror)).load("dev")
    local = resolve_source(task, None).load("dev")
    assert isinstance(resolve_source(task, None), LocalSource)
    assert hub["sentence1"] == local["sentence1"][:16] and hub["label"] == local["label"][:16]


def test_unlabelled_test_split_is_refused_naming_split_and_row(tmp_path: Path) -> None:
    rows = {"sentence1": ["a b.", "c d."], "sentence2": ["a.", "d."], "label": [1, -1], "idx": [0, 1]}
    mirror = build_mirror(tmp_path / "glue", ["mrpc"], rows=8, extra={"mrpc": {"validation": rows}})
    with pytest.raises(GlueFormatError, match=r"hub:.*/mrpc\[validation\]: row 1 \(idx 1\): label -1 is not"):
        resolve_source(load_task("mrpc"), None, str(mirror)).load("dev")


def test_scores_out_of_range_and_empty_sentences_are_refused(tmp_path: Path) -> None:
    bad = {"sentence1": ["a b.", "c d."], "sentence2": ["a.", "d."], "label": [1.0, 7.5], "idx": [0, 1]}
    empty = {"sentence1": ["a b.", " "], "sentence2": ["a.", "d."], "label": [1.0, 2.0], "idx": [4, 5]}
    mirror = build_mirror(
        tmp_path / "glue", ["stsb"], rows=8, extra={"stsb": {"validation": bad, "train": empty}}
    )
    source = resolve_source(load_task("stsb"), None, str(mirror))
    with pytest.raises(GlueFormatError, match=r"stsb\[validation\]: row 1 \(idx 1\): score 7.5 is outside"):
        source.load("dev")
    with pytest.raises(GlueFormatError, match=r"stsb\[train\]: row 1 \(idx 5\): empty sentence"):
        source.load("train")


def test_missing_hub_dir_and_config_are_named(tmp_path: Path, mirror: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data\.hub_dir=.*nowhere: no such directory"):
        resolve_source(load_task("mrpc"), None, str(tmp_path / "nowhere"))
    only_mrpc = build_mirror(tmp_path / "one", ["mrpc"], rows=8)
    with pytest.raises(FileNotFoundError, match=r"data\.hub_dir=.*: no hub-layout dataset with config 'qqp'"):
        resolve_source(load_task("qqp"), None, str(only_mrpc)).load("train")


@pytest.mark.slow
def test_smoke_run_from_a_hub_mirror_of_the_real_mrpc_files_without_local_glue(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    mirror = build_mirror(tmp_path / "glue", ["mrpc"], rows=None)  # every row of the real files
    elsewhere = tmp_path / "work"  # no data/glue or ../shared/data/glue from here
    elsewhere.mkdir()
    cmd = [
        sys.executable, "-m", "dse_lightning.train", "task=mrpc", "debug=smoke", f"data.hub_dir={mirror}",
        f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}",
        "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DSE_GLUE_DIR"}
    proc = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["data"]["hub_dir"] and set(results["student"]["metrics"]) == {"acc", "f1"}
    assert "hub:" in proc.stdout + proc.stderr


def test_two_local_copies_named_alike_are_not_confused(tmp_path: Path) -> None:
    """datasets' cache keys a folder by its name: each copy must still give its own rows and fingerprint."""
    task = load_task("mrpc")
    small = resolve_source(task, None, str(build_mirror(tmp_path / "a" / "glue", ["mrpc"], rows=8)))
    large = resolve_source(task, None, str(build_mirror(tmp_path / "b" / "glue", ["mrpc"], rows=12)))
    assert len(small.load("dev")) == 8 and len(large.load("dev")) == 12 and len(small.load("dev")) == 8
    assert small.fingerprint("dev") != large.fingerprint("dev")
    assert small.fingerprint("dev") == small.fingerprint("dev") != small.fingerprint("train")
