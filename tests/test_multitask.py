"""The multi-task student (`tasks=`): sampling rules, one run with a head per task, its export and store."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from conftest import MRPC_HEADER, Stopped, make_cfg, mrpc_rows, run_cli, write_tsv
from dse_lightning import load_student
from dse_lightning.data.multitask import TaskBatches, schedule
from dse_lightning.data.resumable import EpochSampler, ResumableLoader
from dse_lightning.export.evaluate import cosine_metrics, evaluate_export
from dse_lightning.options import OptionError
from dse_lightning.scoring import open_index
from dse_lightning.sweep import collect
from dse_lightning.train import train

SIZES = {"mrpc": 6, "stsb": 3, "rte": 1}


def test_proportional_takes_each_batch_once_shuffled_and_seeded() -> None:
    order = schedule(SIZES, "proportional", seed=1)
    assert Counter(order) == Counter(SIZES)
    assert order == schedule(SIZES, "proportional", seed=1)
    assert order != schedule(SIZES, "proportional", seed=2)  # another epoch, another order


def test_round_robin_and_temperature_take_as_many_steps() -> None:
    assert schedule(SIZES, "round_robin", 0)[:4] == ["mrpc", "stsb", "rte", "mrpc"]
    assert len(schedule(SIZES, "round_robin", 0)) == 10
    draws = Counter(schedule({"a": 900, "b": 100}, "temperature", 0, temperature=1e6))
    assert sum(draws.values()) == 1000 and 400 < draws["b"] < 600  # a high temperature: near uniform
    cold = Counter(schedule({"a": 900, "b": 100}, "temperature", 0, temperature=1.0))
    assert 50 < cold["b"] < 150  # T = 1: in proportion to size
    with pytest.raises(ValueError, match=r"tasks.sampling=often: not one of"):
        schedule(SIZES, "often", 0)
    with pytest.raises(ValueError, match="tasks.temperature=0: must be above 0"):
        schedule(SIZES, "temperature", 0, temperature=0)


def loaders() -> dict[str, ResumableLoader]:
    sizes = {"a": 12, "b": 5}
    return {
        n: ResumableLoader([f"{n}{i}" for i in range(k)], EpochSampler(k, 3), batch_size=2)
        for n, k in sizes.items()
    }


@pytest.mark.parametrize("rule", ["proportional", "temperature", "round_robin"])
def test_a_resumed_epoch_goes_on_where_the_checkpoint_was_taken(rule: str) -> None:
    whole = list(TaskBatches(loaders(), rule, seed=7, temperature=2.0, trainer=None))
    assert len(whole) == 6 + 3
    interrupted = TaskBatches(loaders(), rule, seed=7, temperature=2.0, trainer=None)
    first = [b for _, b in zip(range(4), interrupted, strict=False)]
    resumed = TaskBatches(loaders(), rule, seed=7, temperature=2.0, trainer=None)
    resumed.load_state_dict(interrupted.state_dict())
    assert interrupted.state_dict() == {"epoch": 0, "steps": 4}
    assert first + list(resumed) == whole


def three_tasks(root: Path) -> Path:
    """MRPC, STS-B and RTE folders in GLUE's formats, a few rows each."""
    write_tsv(root / "MRPC/train.tsv", MRPC_HEADER, mrpc_rows(32), bom=True)
    write_tsv(root / "MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(8), bom=True)
    for split, n in (("train", 24), ("dev", 8)):
        sts = [
            [str(i), f"A man plays {i} songs.", f"A man plays {i % 5} songs.", str(i % 6)] for i in range(n)
        ]
        write_tsv(root / f"STS-B/{split}.tsv", ["index", "sentence1", "sentence2", "score"], sts)
        rte = [
            [str(i), f"City {i} lies on the coast.", f"City {i} is {'wet' if i % 2 else 'dry'}.",
             ["entailment", "not_entailment"][i % 2]]
            for i in range(n)
        ]  # fmt: skip
        write_tsv(root / f"RTE/{split}.tsv", ["index", "sentence1", "sentence2", "label"], rte)
    return root


STUDENT = ["student=dse", "student.max_epochs=1", "student.batch_size=8", "data.eval_batch_size=4"]


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("multitask")
    cfg = make_cfg(tmp, three_tasks(tmp / "glue"), "run", "tasks=glue_pairs", *STUDENT)
    return tmp, train(cfg)


def test_one_student_has_a_head_and_a_record_per_task(multitask_run) -> None:
    tmp, result = multitask_run
    run = tmp / "run"
    top = json.loads((run / "results.json").read_text())
    assert list(top["tasks"]) == ["mrpc", "stsb", "rte"] and top["multitask"]["export"] == "student/export"
    per_task = {n: json.loads((run / n / "results.json").read_text()) for n in top["tasks"]}
    assert set(per_task["stsb"]["student"]["metrics"]) == {"pearson", "spearman"}
    assert set(per_task["mrpc"]["student"]["metrics"]) == {"acc", "f1"}
    assert {r["teacher"]["key"] for r in per_task.values()} == {r.teacher.key for r in result.tasks.values()}
    assert len({r["teacher"]["key"] for r in per_task.values()}) == 3  # each task's own teacher
    monitored = [
        per_task["mrpc"]["student"]["metrics"]["acc"],
        per_task["stsb"]["student"]["metrics"]["pearson"],
    ]
    assert top["multitask"]["score"] == pytest.approx(
        (sum(monitored) + per_task["rte"]["student"]["metrics"]["acc"]) / 3
    )
    export = run / "student" / "export"
    assert sorted(p.name for p in (export / "heads").iterdir()) == [
        f"{n}.safetensors" for n in ("mrpc", "rte", "stsb")
    ]
    assert "## STSB" in (export / "README.md").read_text()
    # Each head, served from the export, scores its task's dev set as the run measured it.
    for name, record in per_task.items():
        served = evaluate_export(export, name, data_dir=str(tmp / "glue"))
        assert served == pytest.approx(record["student"]["metrics"], abs=1e-5), name


def test_the_export_scores_with_the_head_it_is_asked_for(multitask_run) -> None:
    tmp, _ = multitask_run
    student = load_student(tmp / "run" / "student" / "export")
    a, b = ["A man plays 3 songs.", "City 2 lies on the coast."], ["A man plays 1 songs.", "City 2 is dry."]
    sts, para = student.score(a, b, task="stsb"), student.score(a, b, task="mrpc")
    assert sts.shape == (2,) and not torch.allclose(sts, para)
    heads = student.for_task("rte").head
    torch.testing.assert_close(student.logits(a, b, task="rte"), heads(student.encode(a), student.encode(b)))
    with pytest.raises(ValueError, match=r"a head per task \(mrpc, stsb, rte\): name one with task="):
        student.score(a, b)
    with pytest.raises(ValueError, match="not 'qqp'"):
        student.for_task("qqp")


def test_one_store_serves_every_head(multitask_run) -> None:
    tmp, _ = multitask_run
    export, store = tmp / "run" / "student" / "export", tmp / "store"
    candidates = [f"A man plays {i} songs." for i in range(10)] + [f"City {i} is dry." for i in range(5)]
    query = "A man plays 4 songs."
    student = load_student(export)
    fresh, built = student.encode(candidates), []
    for task in ("stsb", "mrpc", "rte"):
        index = open_index(export, store, candidates, task=task, progress=False)
        built.append((store / "manifest.json").stat().st_mtime_ns)
        hits = index.search([query], k=len(candidates))[0]
        expected = student.score([query] * len(candidates), candidates, task=task)
        own = student.for_task(task)
        direct = own.kind.scores(own.head(student.encode([query]).expand(len(candidates), -1), fresh))
        got = torch.tensor([h.score for h in sorted(hits, key=lambda h: h.index)])
        torch.testing.assert_close(got, direct.reshape(-1).float(), rtol=0, atol=1e-5)
        torch.testing.assert_close(got, expected.reshape(-1).float(), rtol=0, atol=1e-5)
    assert len(set(built)) == 1  # encoded once, by the first head's call; the others loaded it


def test_a_second_run_reuses_the_student(multitask_run) -> None:
    tmp, result = multitask_run
    again = train(make_cfg(tmp, tmp / "glue", "again", "tasks=glue_pairs", *STUDENT))
    assert all(r.student.reused for r in again.tasks.values())
    assert again.student["key"] == result.student["key"]


def test_what_a_multitask_run_cannot_do_is_refused_before_any_work(tmp_path: Path) -> None:
    data = three_tasks(tmp_path / "glue")
    bad = [
        ("stage=teacher", r"stage=teacher: a multi-task run fits its teachers and its student"),
        ("targets=online", r"a multi-task student learns from exported logits"),
        ("tasks.names=[mrpc]", r"two or more distinct task names"),
        ("tasks.sampling=often", r"tasks.sampling=often: not one of"),
    ]
    for override, message in bad:
        with pytest.raises((OptionError, ValueError), match=message):
            train(make_cfg(tmp_path, data, "bad", "tasks=glue_pairs", *STUDENT, override))
    with pytest.raises(OptionError, match="distill.alpha=2"):  # each task's options, as a one-task run's
        train(make_cfg(tmp_path, data, "bad", "tasks=glue_pairs", *STUDENT, "distill.alpha=2"))
    assert not (tmp_path / "cache" / "teachers").exists()


@pytest.mark.slow
def test_ddp_cpu_trains_the_multitask_student_as_one_process(tmp_path: Path, tiny_backbone: Path) -> None:
    """Two gloo processes take the same task at each step (the schedule is seeded, not drawn per rank) and
    leave the other heads without gradients, as one process does: the same metrics and scores."""
    data, runs = three_tasks(tmp_path / "glue"), {}
    for name, extra in (("one", ()), ("ddp", ("trainer=ddp_cpu",))):
        run_dir = tmp_path / "runs" / name
        run_cli(
            tiny_backbone,
            data,
            tmp_path / name / "cache",
            f"hydra.run.dir={run_dir}",
            "tasks=glue_pairs",
            *extra,
        )
        runs[name] = run_dir
    pair = ["A man plays 3 songs.", "City 2 lies on the coast."], ["A man plays 1 songs.", "City 2 is dry."]
    students = {n: load_student(d / "student" / "export") for n, d in runs.items()}
    for task in ("mrpc", "stsb", "rte"):
        one, two = (json.loads((d / task / "results.json").read_text())["student"] for d in runs.values())
        # The models agree to float noise (scores 1e-5; 6e-8 seen). A metric does to 1e-6 when it counts
        # (acc, f1); STS-B's Pearson merges the two ranks' float32 moments, which was 2.7e-5 off one
        # process's on an AVX-512 Xeon while the scores agreed to 6e-8: 1e-4 for it.
        assert two["metrics"] == pytest.approx(one["metrics"], abs=1e-4 if task == "stsb" else 1e-6), task
        a, b = (s.score(*pair, task=task) for s in students.values())
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_a_killed_multitask_run_resumes_mid_epoch_to_the_uninterrupted_weights(
    tmp_path: Path, caplog
) -> None:
    """Stopped mid-epoch 2 (10 steps an epoch, last.ckpt every 2), the same command resumes at the same
    schedule step: the same dev metrics and final weights as a run never stopped."""
    data = three_tasks(tmp_path / "glue")
    short = ["seed=3", "trainer.deterministic=true", "student.max_epochs=2", "student.batch_size=8",
             "student.encoder.hidden_dim=16", "callbacks.last_checkpoint.every_n_train_steps=2",
             "tasks=glue_pairs"]  # fmt: skip
    ref = train(make_cfg(tmp_path / "ref", data, "run", *short))
    stop = ["+callbacks.stop._target_=conftest.StopAt", "+callbacks.stop.module=MultiTaskDistillModule",
            "+callbacks.stop.step=13"]  # fmt: skip
    runs = tmp_path / "resumed"
    with pytest.raises(Stopped, match="stopped at MultiTaskDistillModule step 13"):
        train(make_cfg(runs, data, "run1", *short, *stop))
    with caplog.at_level(logging.INFO):
        final = train(make_cfg(runs, data, "run2", *short))
    assert "student: resuming from" in caplog.text and "(epoch 1, step 12)" in caplog.text
    assert {n: r.student.metrics for n, r in final.tasks.items()} == {
        n: r.student.metrics for n, r in ref.tasks.items()
    }
    a, b = (torch.load(p / "student/checkpoints/last.ckpt", weights_only=False)["state_dict"]
            for p in (tmp_path / "ref/run", runs / "run2"))  # fmt: skip
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_embeddings_alone_are_judged_by_their_cosine(multitask_run, tiny_backbone: Path) -> None:
    """`export.evaluate --cosine`: any sentence-transformers folder's cosine against STS-B's scores
    (Pearson, Spearman) or a binary task's labels (AUROC); the multi-task export loads as one."""
    tmp, _ = multitask_run
    export, data = tmp / "run" / "student" / "export", str(tmp / "glue")
    sts = cosine_metrics(export, "stsb", data_dir=data)
    student, n = load_student(export), range(8)  # the fixture's STS-B dev rows
    a, b = (student.encode([f"A man plays {x} songs." for x in xs]) for xs in (n, [i % 5 for i in n]))
    cosine = torch.nn.functional.cosine_similarity(a, b)
    expected = torch.corrcoef(torch.stack([cosine, torch.tensor([float(i % 6) for i in n])]))[0, 1]
    assert sts["pearson"] == pytest.approx(float(expected), abs=1e-5) and set(sts) == {"pearson", "spearman"}
    auroc = cosine_metrics(export, "rte", data_dir=data)["auroc"]
    assert 0 <= auroc <= 1
    assert cosine_metrics(export, "stsb", data_dir=data) == sts  # the same embeddings, the same figure
    with pytest.raises(ValueError, match="--cosine: task 'mnli' is multiclass"):
        cosine_metrics(export, "mnli", data_dir=data)


def test_a_multirun_summary_has_a_row_for_a_multitask_job(multitask_run, tmp_path: Path) -> None:
    run, result = multitask_run[0] / "run", multitask_run[1]
    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    shutil.copy(run / "results.json", job / "results.json")
    row = collect(tmp_path / "sweep")[0]
    assert row["status"] == "ok" and row["task"] == "mrpc+stsb+rte" and row["student/score"] == result.score
    assert row["student/stsb/pearson"] == result.tasks["stsb"].student.metrics["pearson"]
