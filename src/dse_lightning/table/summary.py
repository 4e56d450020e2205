"""The table's headline numbers: the dse student's average relative degradation (the paper's 4.6%),
the BiLSTM's gain from distillation, and the scoring speed-up measured by `make bench`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .collect import Group

PAPER_TASKS = ("mrpc", "qqp", "mnli", "qnli", "stsb")  # the five tasks the paper's 4.6% averages over


def task_degradation(group: Group) -> float | None:
    """Mean over seeds of each run's relative degradation averaged over the task's metrics (the engine's
    `relative_degradation.mean`)."""
    per_seed = group.degradation("mean")
    return statistics.fmean(per_seed) if per_seed else None


def average_degradation(
    groups: dict[tuple, Group], student: str, alpha: float, tasks, augment="none", variant=None
) -> dict:
    """{task: degradation} over `tasks` that have results, and their mean (the paper's definition as we
    read it: each task's relative drop against the teacher it learned from, averaged over tasks)."""
    per_task = {}
    for task in tasks:
        group = groups.get((task, student, alpha, augment, variant))
        if group and group.results:
            per_task[task] = task_degradation(group)
    values = [v for v in per_task.values() if v is not None]
    return {"per_task": per_task, "mean": statistics.fmean(values) if values else None}


def _pm(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f}"


def _paired(a: Group, b: Group) -> str:
    """The per-seed differences (points) of the seeds both groups have."""
    sa, sb = a.by_seed(), b.by_seed()
    seeds = [s for s in sa if s in sb]
    if not seeds:
        return ""
    diffs = "/".join(f"{(sa[s] - sb[s]) * 100:+.2f}" for s in seeds)
    return f"; per seed {'/'.join(str(s) for s in seeds)}: {diffs}"


def gap(a: Group, b: Group) -> str | None:
    """`a` against `b` on the mean of the task's dev metrics (mean ± std over seeds): the gap in points,
    whether it is larger than either std, and the paired differences seed by seed; None if one is empty."""
    if not (a and a.results and b and b.results):
        return None
    va, vb = a.scores(), b.scores()
    diff = statistics.fmean(va) - statistics.fmean(vb)
    if min(len(va), len(vb)) < 2:  # one seed has no std: no verdict either way
        verdict = "one seed, noise not measured"
    else:
        noise = max(statistics.stdev(v) for v in (va, vb))
        verdict = "within noise" if abs(diff) <= noise else ("better" if diff > 0 else "worse")
    return f"{_pm(va)} vs {_pm(vb)} ({diff * 100:+.2f} points, {verdict}{_paired(a, b)})"


def comparison(groups: dict[tuple, Group], tasks, variant: tuple, baseline: tuple) -> str | None:
    """Per task, a student variant (name, alpha, augment[, spec name]) against a baseline variant (`gap`)."""
    parts = []
    for task in tasks:
        if found := gap(groups.get(_key(task, variant)), groups.get(_key(task, baseline))):
            parts.append(f"{task} {found}")
    return "; ".join(parts) or None


def _key(task: str, variant: tuple) -> tuple:
    """A group's key from (student, alpha, augment[, spec name])."""
    return (task, *variant, None) if len(variant) == 3 else (task, *variant)


def bench_speedup(path: Path, n: int = 10_000) -> dict[str, float]:
    """Query-vs-n-candidates speed-up over the cross-encoder, by student head, from make bench."""
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("rows", [])
    return {r["head"]: r["speedup"] for r in rows if r["n"] == n}
