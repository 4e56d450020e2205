"""The cells' results.json files -> one row per (task, model, alpha, metric): mean, std over seeds."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..results import RunResult, StudentResult, TeacherResult
from .cells import result
from .profile import Profile


@dataclass
class Group:
    """Every finished cell of one task and model (teacher, or a student at one alpha)."""

    task: str
    model: str  # "teacher" or the student's name
    alpha: float | None
    augment: str = "none"  # the student's transfer set
    variant: str | None = None  # a profile spec's own name
    results: list[RunResult] = field(default_factory=list)
    transfer: list[float] = field(default_factory=list)

    def _entries(self) -> list[TeacherResult | StudentResult]:
        return [r.teacher if self.model == "teacher" else r.student for r in self.results]

    def values(self, metric: str) -> list[float]:
        return [e.metrics[metric] for e in self._entries() if metric in e.metrics]

    def scores(self) -> list[float]:
        """Per seed, the mean of the task's dev metrics (one number to compare students by)."""
        return [statistics.fmean(e.metrics.values()) for e in self._entries()]

    def transfer_pairs(self) -> float:
        """The mean size of the students' transfer sets (0: gold pairs only)."""
        return statistics.fmean(r.student.targets.get("transfer_pairs") or 0 for r in self.results)

    def by_seed(self) -> dict[int, float]:
        """scores() by the run's seed (to pair two variants seed by seed)."""
        return {r.seed: score for r, score in zip(self.results, self.scores(), strict=True)}

    def degradation(self, metric: str) -> list[float]:
        """Relative degradation (teacher - student) / teacher of each seed against its own teacher."""
        if self.model == "teacher":
            return []
        # none where the teacher scored 0 on the metric (relative_degradation leaves it out)
        return [e.relative_degradation[metric] for e in self._entries() if metric in e.relative_degradation]

    def mean_of(self, key: str) -> float | None:
        vals = [getattr(e, key) for e in self._entries() if getattr(e, key) is not None]
        return statistics.fmean(vals) if vals else None


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def collect(profile: Profile, out: Path) -> dict[tuple, Group]:
    """Groups keyed by (task, model, alpha, augment, variant), in the profile's order; unfinished cells are
    absent."""
    groups: dict[tuple, Group] = {}
    for task in profile.tasks:  # keep the table's order even when cells finish out of order
        groups[(task, "teacher", None, "none", None)] = Group(task, "teacher", None)
        for spec in profile.students:
            key = (task, spec["student"], float(spec["alpha"]), spec["augment"], spec.get("name"))
            groups[key] = Group(*key)
    for cell in profile.cells():
        if (done := result(cell.dir(out))) is None:
            continue
        key = (cell.task, cell.student or "teacher", cell.alpha, cell.augment, cell.variant)
        groups[key].results.append(done)
        if (transfer := cell.dir(out) / "transfer.json").is_file():
            groups[key].transfer.append(json.loads(transfer.read_text())["spearman"])
    return _with_ensembles(groups)


def _with_ensembles(groups: dict[tuple, Group]) -> dict[tuple, Group]:
    """The groups with, after each task's teacher, the ensemble teachers its students learned from: an
    ensemble (targets=ensemble) has its own dev metrics per seed, in its student's record."""
    out: dict[tuple, Group] = {}
    for key, group in groups.items():
        out[key] = group
        if group.model == "teacher":
            for g in groups.values():
                if g.task == group.task and (ensemble := ensemble_teacher(g)):
                    out[(g.task, "teacher", None, "none", ensemble.variant)] = ensemble
    return out


def ensemble_teacher(g: Group) -> Group | None:
    """The ensemble a student group distilled from, as a teacher group: each seed's run with the
    ensemble's dev metrics, name and parameters (its members' sum) in place of the cross-encoder's."""
    runs = [r for r in g.results if r.student and r.student.targets.get("source") == "ensemble"]
    if not runs:
        return None
    # one row per distinct ensemble: with a shared teacher (teacher_seed) every student seed has the same
    distinct: dict[tuple, RunResult] = {}
    for r in runs:
        distinct.setdefault(_ensemble_identity(r.student.targets), r)
    runs = list(distinct.values())
    variant = f"ensemble of {g.variant or f'{g.model} alpha {g.alpha:g}'}"
    return Group(g.task, "teacher", None, variant=variant, results=[_as_ensemble(r) for r in runs])


def _ensemble_identity(targets: dict) -> tuple:
    """Its cross-encoders' keys and its members' dev metrics to the table's 4 digits: a gold member fitted
    again under another key (the same model: it was keyed by distill.alpha=0 vs 0.0 once) is the same
    ensemble, and so is a member refitted after its cache was lost (its metrics moved in the 7th digit)."""
    crosses = len(targets["members"]) - targets.get("siamese", 0)
    metrics = [{k: round(v, 4) for k, v in m.items()} for m in targets.get("member_metrics") or []]
    return tuple(targets["members"][:crosses]), json.dumps(metrics, sort_keys=True)


def _as_ensemble(r: RunResult) -> RunResult:
    targets = r.student.targets
    siamese = targets.get("siamese", 0)
    crosses = len(targets["members"]) - siamese
    name = f"ensemble: {crosses} {r.teacher.name} + {siamese} gold {r.student.name}"
    params = crosses * r.teacher.params + siamese * r.student.params
    teacher = replace(r.teacher, name=name, metrics=targets["metrics"], params=params, train_time_s=None)
    return replace(r, teacher=teacher)


def metric_names(groups: dict[tuple, Group], task: str) -> list[str]:
    names: dict[str, None] = {}
    for g in groups.values():
        if g.task == task:
            for r in g.results:
                names.update(dict.fromkeys(r.teacher.metrics))
    return list(names)


def rows(groups: dict[tuple, Group]) -> list[dict]:
    """The long table (results.csv): one row per task, model, alpha and metric."""
    out = []
    by_task = defaultdict(list)
    for g in groups.values():
        by_task[g.task].append(g)
    for task, task_groups in by_task.items():
        for metric in metric_names(groups, task):
            for g in task_groups:
                mean, std = mean_std(g.values(metric))
                deg, _ = mean_std(g.degradation(metric))
                out.append(
                    {
                        "task": task,
                        "model": "teacher" if g.model == "teacher" else "student",
                        "student": "" if g.model == "teacher" else g.model,
                        "alpha": "" if g.alpha is None else g.alpha,
                        "augment": "" if g.model == "teacher" else g.augment,
                        "variant": g.variant or "",
                        "metric": metric,
                        "mean": mean,
                        "std": std,
                        "n": len(g.values(metric)),
                        "relative_degradation": deg,
                        "params": g.mean_of("params"),
                        "train_time_s": g.mean_of("train_time_s"),
                    }
                )
    return out
