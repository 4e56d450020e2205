"""make reproduce-table: profiles -> cells, resumable cell runs, the rendered table (synthetic results)."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, write_tsv
from dse_lightning.table import cells as cells_mod
from dse_lightning.table.__main__ import main
from dse_lightning.table.profile import load_profile, sweeps
from dse_lightning.table.render import busy_hours, render

PAPER_TABLE = ROOT / "experiments" / "paper_table"
REFERENCE = [
    "--reference",
    str(PAPER_TABLE / "reference.yaml"),
    "--bench",
    str(ROOT / "experiments/bench/results.json"),
]

METRICS = {"mrpc": ("acc", "f1"), "stsb": ("pearson", "spearman")}


def write_profile(tmp_path: Path, **extra) -> Path:
    spec = {
        "name": "t",
        "tasks": ["mrpc", "stsb"],
        "seeds": [1, 2],
        "teacher_seed": 1,
        "common": ["logger=none"],
        "students": [
            {"student": "dse", "alpha": 0.5, "overrides": ["student.max_epochs=1"]},
            {"student": "dse", "alpha": 0},
            {"student": "bilstm", "alpha": 0.5},
            {"student": "bilstm", "alpha": 0},
        ],
        **extra,
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_cpu_profile_expands_to_every_cell_and_one_sweep_per_seed_and_student() -> None:
    profile = load_profile("cpu", PAPER_TABLE / "profiles")
    cells = profile.cells()
    assert len(profile.teacher_cells()) == 3  # one shared teacher per task
    assert len(profile.student_cells()) == 3 * 3 * 7  # tasks x seeds x the 7 students
    assert len({c.name + c.task for c in cells}) == len(cells)
    assert all("teacher.seed=42" in c.overrides for c in cells)
    groups = sweeps(cells)
    # a teacher sweep per task (runners fit them side by side), then a multirun over the tasks
    assert [len(g.cells) for g in groups] == [1] * 3 + [3] * 7 * 3
    assert len({g.id for g in groups}) == len(groups)  # one lock and log each
    first = groups[3].overrides(Path("/out"))
    assert first[-3:] == [
        "task=mrpc,stsb,rte",
        "hydra.sweep.dir=/out/cells",
        "hydra.sweep.subdir=${task.name}/dse_a0_s42",
    ]
    assert (
        load_profile("paper", PAPER_TABLE / "profiles").teacher_cells()[0].overrides[0] == "experiment=paper"
    )


def test_the_fast_cpu_profile_is_cpu_cells_with_the_int8_labelling_teacher() -> None:
    """cpu_fast: a subset of cpu's cells, each with cpu's overrides and the int8 teacher backend added, so
    its table compares cell by cell with cpu's (its baseline)."""
    full = {(c.task, c.name): c.overrides for c in load_profile("cpu", PAPER_TABLE / "profiles").cells()}
    fast = load_profile("cpu_fast", PAPER_TABLE / "profiles")
    assert fast.baseline == "cpu" and len(fast.cells()) == 3 + 3 * 3 * 4
    for cell in fast.cells():
        ours = list(cell.overrides)
        ours.remove("teacher.backend=openvino-int8")
        assert ours == list(full[(cell.task, cell.name)]), cell.name


def test_the_bf16_profile_is_cpu_fast_with_bf16_autocast_and_fused_adamw() -> None:
    """cpu_fast_bf16 (make reproduce-table's default): cpu_fast's cells with only the training numerics
    changed (Lightning's bf16-mixed and AdamW's fused kernel), compared with cpu's fp32 table as cpu_fast."""
    fast = {(c.task, c.name): c.overrides for c in load_profile("cpu_fast", PAPER_TABLE / "profiles").cells()}
    bf16 = load_profile("cpu_fast_bf16", PAPER_TABLE / "profiles")
    assert bf16.baseline == "cpu" and len(bf16.cells()) == len(fast)
    added = [
        "trainer.precision=bf16-mixed",
        "+teacher.module.optimizer.fused=true",
        "+student.module.optimizer.fused=true",
    ]
    for cell in bf16.cells():
        ours = [o for o in cell.overrides if o not in added]
        assert len(ours) == len(cell.overrides) - len(added), cell.name
        assert ours == list(fast[(cell.task, cell.name)]), cell.name
    assert "PROFILE ?= cpu_fast_bf16\n" in (ROOT / "Makefile").read_text()  # make reproduce-table's default


def test_a_profile_that_extends_another_says_only_what_it_changes(tmp_path: Path) -> None:
    parent = load_profile(str(write_profile(tmp_path)))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": "t", "name": "c", "seeds": [3], "add_common": ["x=1"]}))
    got = load_profile(str(child))
    assert (got.name, got.seeds, got.common) == ("c", [3], [*parent.common, "x=1"])
    assert (got.tasks, got.students, got.teacher_seed) == (parent.tasks, parent.students, parent.teacher_seed)
    bad = {
        "needs a name of its own": {"extends": "t"},
        "add_common extends a parent's common: it needs `extends`": {"name": "c", "add_common": ["x=1"]},
        "extends itself": {"extends": "child", "name": "c"},
        r"PROFILE=nosuch: no profile": {"extends": "nosuch", "name": "c"},
    }
    for message, raw in bad.items():
        child.write_text(yaml.safe_dump(raw))
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            load_profile(str(child))


def test_a_multitask_spec_is_one_run_per_seed_for_all_tasks(tmp_path: Path) -> None:
    """`tasks=glue_pairs` in a spec's overrides: its cells (one per task, as any spec's) are one train run
    per seed over the profile's tasks, not a multirun over `task=`."""
    spec = {"student": "dse", "alpha": 0.5, "name": "dse_mt", "overrides": ["tasks=glue_pairs"]}
    profile = load_profile(str(write_profile(tmp_path, students=[spec])))
    groups = [g for g in sweeps(profile.cells()) if g.cells[0].student]
    assert [(g.multitask, [c.task for c in g.cells]) for g in groups] == [(True, ["mrpc", "stsb"])] * 2
    first = groups[0].overrides(Path("/out"))
    assert "-m" not in first and first[-2:] == [
        "tasks.names=[mrpc,stsb]",
        "hydra.run.dir=/out/cells/multitask/dse_mt_s1",
    ]
    assert groups[0].cells[0].dir(Path("/out")) == Path("/out/cells/mrpc/dse_mt_s1")
    plain = sweeps(load_profile(str(write_profile(tmp_path))).cells())[-1]
    assert not plain.multitask and plain.overrides(Path("/out"))[0] == "-m"


def test_profile_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="known profiles: .*cpu"):
        load_profile("nosuch", PAPER_TABLE / "profiles")
    with pytest.raises(ValueError, match="unknown key"):
        load_profile(str(write_profile(tmp_path, colour="red")))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "tasks": ["mrpc"], "seeds": [1], "common": []}))
    with pytest.raises(ValueError, match="missing key.*students"):
        load_profile(str(bad))


def fake_results(
    task: str,
    seed: int,
    student: str | None,
    alpha: float | None,
    augment: str = "none",
    ensemble: bool = False,
) -> dict:
    """A results.json whose metrics are a known function of the cell: teacher 0.8, students lower."""
    names = METRICS[task]
    teacher = {
        "name": "minilm",
        "key": "k",
        "metrics": dict.fromkeys(names, 0.8),
        "params": 22_000_000,
        "train_time_s": 10,
    }
    results = {
        "task": task,
        "stage": "all" if student else "teacher",
        "seed": seed,
        "data": {"train": 48, "dev": 16},
        "teacher": teacher,
        "wall_time_s": 30.0,
        "config": {"student": {"backbone": "b"}},
    }
    if student:
        score = (0.76 if student == "dse" else 0.70) + (0.02 if alpha else 0.0) + 0.01 * (seed - 1)
        score += 0.03 if augment != "none" else 0.0
        metrics = dict.fromkeys(names, score)
        degradation = {m: (0.8 - score) / 0.8 for m in names}
        degradation["mean"] = sum(degradation.values()) / len(names)  # as the engine writes it
        results["student"] = {
            "name": student,
            "alpha": alpha,
            "metrics": metrics,
            "relative_degradation": degradation,
            "params": 25_000_000 if student == "dse" else 12_000_000,
            "targets": {"source": "logits"}
            | ({} if augment == "none" else {"augment": augment, "transfer_pairs": 96}),
        }
        if ensemble:  # a cross-encoder and a gold student averaged: its own dev metrics, per seed
            own = dict.fromkeys(names, 0.85)  # one ensemble (the shared teacher's seed) for every seed
            results["student"]["targets"] |= {"source": "ensemble", "members": ["k", "g"], "siamese": 1}
            results["student"]["targets"] |= {"metrics": own}
    return results


def fake_run(calls: list, fail: set[str] = frozenset()):
    """Stands in for subprocess.run of an engine multirun: writes each job's results.json (or failed.json)."""

    def run(cmd, **kwargs):
        ov = dict(a.split("=", 1) for a in cmd if "=" in a)
        name = ov["hydra.sweep.subdir"].split("/", 1)[1]
        for task in ov["task"].split(","):
            job = Path(ov["hydra.sweep.dir"]) / task / name
            job.mkdir(parents=True, exist_ok=True)
            calls.append(name)
            if name in fail:
                (job / "failed.json").write_text("{}")
                continue
            alpha = float(ov["distill.alpha"]) if "student" in ov else None
            ensemble = ov.get("targets") == "ensemble"
            res = fake_results(
                task, int(ov["seed"]), ov.get("student"), alpha, ov.get("augment", "none"), ensemble
            )
            (job / "results.json").write_text(json.dumps(res))
            (job / "student" / "checkpoints").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0)

    return run


def test_cells_resume_skip_finished_and_survive_failures(tmp_path: Path, monkeypatch) -> None:
    profile = load_profile(str(write_profile(tmp_path, keep_checkpoints=False)))
    calls: list[str] = []
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run(calls, fail={"bilstm_a0_s2"}))
    failed = cells_mod.run_cells(profile, tmp_path / "out")
    assert len(calls) == 2 + 2 * 2 * 4  # every cell once
    assert sorted(failed) == ["mrpc/bilstm_a0_s2", "stsb/bilstm_a0_s2"]
    assert not list((tmp_path / "out").glob("cells/*/*/student/checkpoints"))  # pruned after success
    calls.clear()
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run(calls))
    assert cells_mod.run_cells(profile, tmp_path / "out") == []
    assert sorted(calls) == ["bilstm_a0_s2", "bilstm_a0_s2"]  # only what had failed runs again
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert len(timings) == 18
    # a run killed between a cell's end and its sweep's: the next run records that cell, keeps the rest
    lost = timings.pop("stsb/teacher_s1")
    timings["mrpc/teacher_s1"]["wall_s"] = 1.5
    (tmp_path / "out" / "timings.json").write_text(json.dumps(timings))
    assert cells_mod.run_cells(profile, tmp_path / "out") == []
    again = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert again["stsb/teacher_s1"] == lost and again["mrpc/teacher_s1"]["wall_s"] == 1.5


def test_a_changed_profile_refuses_its_stale_finished_cells(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run(calls))
    cells_mod.run_cells(load_profile(str(write_profile(tmp_path))), tmp_path / "out")
    changed = load_profile(str(write_profile(tmp_path, common=["logger=none", "teacher.max_epochs=2"])))
    calls.clear()
    with pytest.raises(cells_mod.StaleCellError, match=r"mrpc/teacher_s1 .*teacher.max_epochs=2"):
        cells_mod.run_cells(changed, tmp_path / "out")
    assert calls == []  # refused before anything ran


def test_busy_hours_count_overlaps_once_and_not_the_gap_between_sessions() -> None:
    def t(end: str, wall_s: float) -> dict:
        return {"finished": f"2026-12-01T{end}", "wall_s": wall_s}

    # two parallel cells 00:00-01:00 and 00:30-01:30, then a resumed one 05:00-05:30 in a later session
    timings = [t("01:00:00", 3600), t("01:30:00", 3600), t("05:30:00", 1800)]
    assert busy_hours(timings) == pytest.approx(2.0)
    assert busy_hours([t("01:00:00", 3600), t("00:40:00", 600)]) == pytest.approx(1.0)  # nested


def test_render_means_degradation_and_published_columns(tmp_path: Path, monkeypatch) -> None:
    path = write_profile(tmp_path)
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run([]))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--stage", "cells"]) == 0
    render(
        load_profile(str(path)), out, PAPER_TABLE / "reference.yaml", ROOT / "experiments/bench/results.json"
    )
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {"task", "student", "alpha", "metric", "mean", "std", "relative_degradation"} <= set(rows[0])
    dse = next(r for r in rows if r["task"] == "mrpc" and r["student"] == "dse" and r["alpha"] == "0.5")
    assert float(dse["mean"]) == pytest.approx(0.785)  # seeds 1, 2: 0.78, 0.79
    assert float(dse["std"]) == pytest.approx(0.00707, abs=1e-4)
    assert float(dse["relative_degradation"]) == pytest.approx((0.8 - 0.785) / 0.8)
    teacher_f1 = next(
        r for r in rows if r["task"] == "mrpc" and r["model"] == "teacher" and r["metric"] == "f1"
    )
    assert float(teacher_f1["published"]) == 89.3 and "Devlin" in teacher_f1["published_source"]
    md = (out / "results.md").read_text()
    assert "dse (alpha 0.5) average relative degradation over mrpc, stsb: 1.88%" in md
    assert "Distillation helps the BiLSTM on average" in md
    assert (
        "| dse (alpha 0.5) | 2 | 0.7850 ± 0.0071 | 0.7850 ± 0.0071 | 1.88 ± 0.88% |" in md
    )  # std over seeds
    assert (out / "results.png").stat().st_size > 10_000


def test_transfer_set_variants_have_their_cells_column_and_comparison(tmp_path: Path, monkeypatch) -> None:
    students = [{"student": "dse", "alpha": 0.5, "augment": "pairs"}, {"student": "dse", "alpha": 0}]
    path = write_profile(tmp_path, tasks=["mrpc"], students=students)
    cell = next(c for c in load_profile(str(path)).student_cells() if c.augment == "pairs")
    assert cell.name == "dse_pairs_a0.5_s1" and "augment=pairs" in cell.overrides
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run([]))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--stage", "cells"]) == 0
    render(load_profile(str(path)), out, PAPER_TABLE / "reference.yaml", Path("-"))
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {(r["student"], r["augment"]) for r in rows} == {("", ""), ("dse", "pairs"), ("dse", "none")}
    md = (out / "results.md").read_text()
    assert "| dse (alpha 0.5, pairs) | 2 |" in md
    line = next(x for x in md.splitlines() if x.startswith("| dse (alpha 0.5, pairs) |"))
    assert "M | 96 |" in line  # after params: the transfer set's size
    # seeds 1, 2: 0.81, 0.82 with the transfer set vs 0.76, 0.77 on gold pairs at alpha 0
    assert "**dse (pairs, alpha 0.5) vs dse alpha 0 on gold pairs**" in md
    assert "mrpc 0.8150 ± 0.0071 vs 0.7650 ± 0.0071 (+5.00 points, better; per seed 1/2: +5.00/+5.00)" in md
    assert (out / "transfer_size.png").stat().st_size > 10_000  # metric against transfer-set size


def test_a_comparison_of_one_seed_gives_no_verdict() -> None:
    from types import SimpleNamespace

    from dse_lightning.table.collect import Group
    from dse_lightning.table.summary import comparison

    def group(augment: str, *scores: float) -> Group:
        runs = [
            SimpleNamespace(seed=i, student=SimpleNamespace(metrics={"acc": s})) for i, s in enumerate(scores)
        ]
        return Group("mrpc", "dse", 0.5, augment, results=runs)

    one = {
        ("mrpc", "dse", 0.5, "pairs", None): group("pairs", 0.8),
        ("mrpc", "dse", 0.5, "none", None): group("none", 0.7),
    }
    assert "(+10.00 points, one seed, noise not measured; per seed 0: +10.00)" in comparison(
        one, ["mrpc"], ("dse", 0.5, "pairs"), ("dse", 0.5, "none")
    )
    two = {
        ("mrpc", "dse", 0.5, "pairs", None): group("pairs", 0.8, 0.7),
        ("mrpc", "dse", 0.5, "none", None): group("none", 0.7, 0.76),
    }
    assert "(+2.00 points, within noise; per seed 0/1: +10.00/-6.00)" in comparison(
        two, ["mrpc"], ("dse", 0.5, "pairs"), ("dse", 0.5, "none")
    )


def test_an_ensemble_teacher_has_its_row_and_its_named_student_is_paired_with_alpha_0(
    tmp_path: Path, monkeypatch
) -> None:
    ensemble = ["targets=ensemble", "targets.members=1", "targets.siamese=1"]
    students = [
        {"student": "dse", "alpha": 0.5, "augment": "pairs", "name": "dse_ens", "overrides": ensemble},
        {"student": "dse", "alpha": 0},
    ]
    path = write_profile(tmp_path, tasks=["mrpc"], students=students)
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run([]))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--stage", "cells"]) == 0
    render(load_profile(str(path)), out, PAPER_TABLE / "reference.yaml", Path("-"))
    md = (out / "results.md").read_text()
    # seeds 1 and 2 distilled from one ensemble (the same members): one row; its parameters are its
    # members' (22M + 25M)
    assert "| teacher (ensemble: 1 minilm + 1 gold dse) | 1 | 0.8500 | 0.8500 | - | 47.0M |" in md
    assert "| dse (dse_ens) | 2 | 0.8150 ± 0.0071 |" in md
    assert "**dse (dse_ens) vs dse alpha 0 on gold pairs**" in md
    assert "mrpc 0.8150 ± 0.0071 vs 0.7650 ± 0.0071 (+5.00 points, better; per seed 1/2: +5.00/+5.00)" in md
    assert "**dse (dse_ens) average relative degradation over mrpc" in md
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["variant"] for r in rows if r["model"] == "teacher"} == {"", "ensemble of dse_ens"}


def test_a_named_spec_versus_another_is_compared_with_it(tmp_path: Path, monkeypatch) -> None:
    """`versus`: an ablation's spec compared with the recipe it varies (and, as any named spec, with the
    unnamed spec of its student, alpha and augment)."""
    students = [
        {"student": "dse", "alpha": 0.5},
        {"student": "dse", "alpha": 0.5, "name": "dse_mt", "overrides": ["student.max_epochs=1"]},
        {"student": "dse", "alpha": 0.5, "name": "dse_mt_t", "overrides": ["student.max_epochs=2"]},
    ]
    bad = [*students[:2], {**students[2], "versus": "dse_nope"}]
    with pytest.raises(ValueError, match=r"students\[2\]\.versus='dse_nope'.*\['dse_mt', 'dse_mt_t'\]"):
        load_profile(str(write_profile(tmp_path, tasks=["mrpc"], students=bad)))
    path = write_profile(
        tmp_path, tasks=["mrpc"], students=[*students[:2], {**students[2], "versus": "dse_mt"}]
    )
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run([]))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--stage", "cells"]) == 0
    for seed, lift in ((1, 0.02), (2, 0.01)):  # the ablation's cells: 2 and 1 points above its recipe's
        record = out / "cells" / "mrpc" / f"dse_mt_t_s{seed}" / "results.json"
        res = json.loads(record.read_text())
        res["student"]["metrics"] = {k: v + lift for k, v in res["student"]["metrics"].items()}
        record.write_text(json.dumps(res))
    render(load_profile(str(path)), out, PAPER_TABLE / "reference.yaml", Path("-"))
    md = (out / "results.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- **dse_mt_t vs dse_mt**"))
    assert "(+1.50 points, " in line and "per seed 1/2: +2.00/+1.00)" in line
    assert "- **dse_mt_t vs dse (alpha 0.5)**" in md and "- **dse_mt vs dse (alpha 0.5)**" in md
    assert "- **dse_mt vs dse_mt_t**" not in md  # only the way `versus` names


def test_a_baseline_profile_is_compared_cell_by_cell(tmp_path: Path, monkeypatch) -> None:
    """`baseline: <profile>`: every model of the table against the same cells of another profile's table
    (in <profiles>/../<name>), seed by seed; an unknown name fails before any cell runs."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    students = [{"student": "dse", "alpha": 0.5, "augment": "pairs"}, {"student": "dse", "alpha": 0}]
    write_profile(profiles, name="full", tasks=["mrpc"], students=students).rename(profiles / "full.yaml")
    fast = write_profile(profiles, name="fast", tasks=["mrpc"], students=students[:1], baseline="nope")
    calls: list = []
    monkeypatch.setattr(cells_mod.subprocess, "run", fake_run(calls))
    args = ["--profiles", str(profiles), "--reference", str(PAPER_TABLE / "reference.yaml")]
    with pytest.raises(FileNotFoundError, match="PROFILE=nope"):
        main([str(fast), *args])
    assert not calls
    fast.write_text(fast.read_text().replace("baseline: nope", "baseline: full"))
    assert main(["full", *args]) == 0
    assert main([str(fast), *args, "--stage", "cells"]) == 0
    record = tmp_path / "fast" / "cells" / "mrpc" / "dse_pairs_a0.5_s2" / "results.json"
    res = json.loads(record.read_text())
    res["student"]["metrics"] = {k: v - 0.004 for k, v in res["student"]["metrics"].items()}
    record.write_text(json.dumps(res))
    assert main([str(fast), *args, "--stage", "render"]) == 0
    md = (tmp_path / "fast" / "results.md").read_text()
    assert "## Against profile `full`" in md
    assert (
        "- mrpc, dse (alpha 0.5, pairs): 0.8130 ± 0.0042 vs 0.8150 ± 0.0071 (-0.20 points, within "
        "noise; per seed 1/2: +0.00/-0.40)" in md
    )
    assert "- mrpc, teacher (minilm): 0.8000 ± 0.0000 vs 0.8000 ± 0.0000 (+0.00 points, one seed" in md
    assert "dse (alpha 0)" not in md.split("## Against")[1].split("##")[0]  # not a cell of this table


def test_render_without_cells_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no finished cells"):
        render(
            load_profile(str(write_profile(tmp_path))),
            tmp_path / "empty",
            PAPER_TABLE / "reference.yaml",
            Path("-"),
        )


@pytest.mark.slow
def test_reproduce_table_end_to_end_then_skips(
    tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path, monkeypatch
) -> None:
    """Real engine cells (tiny BERT, fixture MRPC), transfer on a fixture STS-B dev, render; a rerun skips."""
    sts = tmp_path / "sts"
    write_tsv(
        sts / "STS-B/dev.tsv",
        ["index", "sentence1", "sentence2", "score"],
        [[str(i), f"A man plays {i} songs.", f"A man plays {i % 5} songs.", str(i % 6)] for i in range(24)],
    )
    common = [
        "logger=none", f"teacher.backbone={tiny_backbone}", f"data.dir={mrpc_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}", "teacher.max_epochs=1", "student.max_epochs=1",
        "teacher.batch_size=8", "student.batch_size=8", "data.eval_batch_size=4",
        "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    path = write_profile(
        tmp_path,
        tasks=["mrpc"],
        common=common,
        students=[{"student": "dse", "alpha": 0.5}, {"student": "bilstm", "alpha": 0}],
        transfer={"task": "stsb", "split": "dev", "data_dir": str(sts)},
        keep_checkpoints=False,
        workers=2,  # a second runner process shares the cells through their locks
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), *REFERENCE]) == 0
    cells = sorted(p.parent.name for p in out.glob("cells/mrpc/*/results.json"))
    assert cells == ["bilstm_a0_s1", "bilstm_a0_s2", "dse_a0.5_s1", "dse_a0.5_s2", "teacher_s1"]
    teachers = {json.loads(p.read_text())["teacher"]["key"] for p in out.glob("cells/mrpc/*/results.json")}
    assert len(teachers) == 1  # teacher_seed: every student seed distils the same teacher
    for name in ("dse_a0.5_s1", "dse_a0.5_s2", "../backbone"):
        transfer = json.loads((out / "cells" / "mrpc" / name / "transfer.json").read_text())
        assert -1 <= transfer["spearman"] <= 1 and transfer["pairs"] == 24
    assert not list(out.glob("cells/*/*/*/checkpoints"))
    assert len(json.loads((out / "timings.json").read_text())) == 5  # each cell ran once
    before = (out / "results.csv").read_text()
    monkeypatch.setattr(cells_mod.subprocess, "run", lambda *a, **k: pytest.fail("a finished cell ran again"))
    assert main([str(path), "--out", str(out), *REFERENCE]) == 0
    assert (out / "results.csv").read_text() == before


@pytest.mark.slow
def test_paper_profile_dry_run(tmp_path: Path, tiny_backbone: Path, monkeypatch) -> None:
    """`make reproduce-table PROFILE=paper`, every cell, on a tiny BERT and a hub-layout mirror of the five
    tasks (MRPC and STS-B rows from the real files), under trainer=ddp_cpu, through to results.md."""
    from hub_mirror import build_mirror

    mirror = build_mirror(tmp_path / "glue", ["mrpc", "qqp", "mnli", "qnli", "stsb"], rows=24)
    dry_run = [
        f"teacher.backbone={tiny_backbone}", f"data.hub_dir={mirror}", "trainer=ddp_cpu",
        f"paths.cache_dir={tmp_path / 'cache'}", "teacher.max_epochs=1", "student.max_epochs=1",
        "teacher.batch_size=4", "student.batch_size=4", "data.eval_batch_size=4", "logger=none",
        "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "paper"
    args = ["paper", "--out", str(out), *REFERENCE, *(f"--override={o}" for o in dry_run)]
    assert main(args) == 0
    profile = load_profile("paper", PAPER_TABLE / "profiles")
    assert len(list(out.glob("cells/*/*/results.json"))) == len(profile.cells()) == 15
    table = (out / "results.md").read_text()
    for task in ("mrpc", "qqp", "mnli", "qnli", "stsb"):
        assert task in table, table
    mnli = json.loads((out / "cells/mnli/dse_a0.5_s42/results.json").read_text())
    assert set(mnli["teacher"]["metrics"]) == set(mnli["student"]["metrics"]) == {"acc", "acc_mm"}
    assert "acc_mm" in table and mnli["config"]["trainer"]["devices"] == 2


def test_an_ensemble_refitted_to_float_noise_is_the_same_ensemble() -> None:
    from dse_lightning.table.collect import _ensemble_identity

    def targets(*pearsons: float, members=("ce1", "gold1")) -> dict:
        return {"members": list(members), "siamese": 1, "member_metrics": [{"pearson": p} for p in pearsons]}

    first = _ensemble_identity(targets(0.839672863, 0.872654795))
    # the members refitted after a lost cache: their metrics differ in the 7th digit
    assert _ensemble_identity(targets(0.839672983, 0.872654855)) == first
    assert _ensemble_identity(targets(0.839672983, 0.872654855, members=("ce1", "gold2"))) == first
    assert _ensemble_identity(targets(0.8412, 0.872654855)) != first  # another cross-encoder's metrics
    assert _ensemble_identity(targets(0.839672863, 0.872654795, members=("ce2", "gold1"))) != first
