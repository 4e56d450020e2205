"""Where configs are found: the package's tree, then a user's own folders ($DSE_CONFIG_DIR), by one lookup
that the Hydra entry point and `load_task` share. The installed wheel: tests/test_wheel.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from dse_lightning.config import CONFIG_DIR, USER_CONFIG_ENV, find_config, load_task
from dse_lightning.train import drop_recommended_transfer


@pytest.fixture
def my_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user folder with one task of its own (MRPC's file renamed), named by $DSE_CONFIG_DIR."""
    folder = tmp_path / "my_conf"
    (folder / "task").mkdir(parents=True)
    text = (CONFIG_DIR / "task" / "mrpc.yaml").read_text().replace("name: mrpc", "name: paraphrase")
    (folder / "task" / "paraphrase.yaml").write_text(text.replace("monitor: acc", "monitor: f1"))
    monkeypatch.setenv(USER_CONFIG_ENV, str(folder))
    return folder


def test_the_package_carries_its_config_tree() -> None:
    assert CONFIG_DIR.parent.name == "dse_lightning" and (CONFIG_DIR / "train.yaml").is_file()
    assert find_config("task", "mrpc") == CONFIG_DIR / "task" / "mrpc.yaml"


def test_load_task_finds_a_users_task_and_names_the_known_ones(my_conf: Path) -> None:
    task = load_task("paraphrase")
    assert task.name == "paraphrase" and task.monitor == "f1"
    assert load_task("stsb").name == "stsb"  # the package's own are still there
    with pytest.raises(FileNotFoundError, match=r"task 'mrcp': .*known: \['mnli', 'mrpc', 'paraphrase'"):
        load_task("mrcp")


def test_the_hydra_entry_point_reads_the_same_folders(my_conf: Path) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["task=paraphrase", "student=dse"])
    assert cfg.task.name == "paraphrase" and cfg.task.monitor == "f1" and cfg.student.name == "dse"


def test_a_user_file_the_package_would_hide_is_refused(my_conf: Path, monkeypatch) -> None:
    mrpc = (CONFIG_DIR / "task" / "mrpc.yaml").read_text()
    (my_conf / "task" / "mrpc.yaml").write_text(mrpc)  # an identical copy hides nothing
    assert load_task("paraphrase").name == "paraphrase"
    (my_conf / "task" / "mrpc.yaml").write_text(mrpc.replace("monitor: acc", "monitor: f1"))
    with pytest.raises(ValueError, match=r"my_conf: \['task/mrpc.yaml'\] have the names of the package's"):
        load_task("paraphrase")
    monkeypatch.setenv(USER_CONFIG_ENV, str(my_conf.parent / "nowhere"))
    with pytest.raises(NotADirectoryError, match=r"\$DSE_CONFIG_DIR: no folder .*nowhere"):
        load_task("mrpc")


def composed(*overrides: str):
    """The train config of these command-line overrides, set as Hydra's current job (job_overrides)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    return cfg


@pytest.mark.parametrize(("student", "augment"), [("dse", "pairs"), ("bilstm", "tang")])
def test_each_student_recommends_its_best_measured_transfer_set(student: str, augment: str) -> None:
    """The defaults follow experiments/paper_table/cpu; `augment=none` still gives gold pairs only; at
    alpha 0 (labels only) or with a teacher of score files the recommended set is dropped, not refused;
    a set named on the command line is kept (and refused by its own check)."""
    gold = composed(f"student={student}", "augment=none").augment
    cfg = composed(f"student={student}")
    assert cfg.augment.name == augment
    drop_recommended_transfer(cfg)
    assert cfg.augment.name == augment  # alpha 0.5 and a teacher with a model: kept
    for extra in (["distill.alpha=0"], ["teacher=scores", "teacher.train=scores.jsonl"]):
        cfg = composed(f"student={student}", *extra)
        drop_recommended_transfer(cfg)
        assert cfg.augment == gold, extra
    cfg = composed(f"student={student}", "distill.alpha=0", f"augment={augment}")
    drop_recommended_transfer(cfg)
    assert cfg.augment.name == augment
