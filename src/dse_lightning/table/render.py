"""results.csv, results.md and results.png of a profile, with the published numbers beside ours."""

from __future__ import annotations

import json
import logging
import os
import platform
from datetime import datetime, timedelta
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..report import write_csv
from ..utils.io import atomic_path
from .collect import Group, collect, mean_std, metric_names, rows
from .plot import bar_chart, size_chart
from .profile import Profile
from .summary import PAPER_TASKS, average_degradation, bench_speedup, comparison, gap

log = logging.getLogger(__name__)


def published(ref: dict, task: str, metric: str, model: str, alpha: float | None) -> tuple[float | None, str]:
    """The published number (percent) of a task metric for `model` ("teacher" or a student); its source."""
    if model == "teacher":
        return ref["bert_large"]["tasks"].get(task, {}).get(metric), ref["bert_large"]["source"]
    if model == "bilstm":
        which = "distilled" if alpha else "baseline"
        return ref["bilstm"][which].get(task, {}).get(metric), ref["bilstm"]["source"]
    return None, ""


def _with_published(table: list[dict], ref: dict) -> list[dict]:
    for row in table:
        model = row["student"] or row["model"]  # the student's name, or "teacher"
        row["published"], row["published_source"] = published(
            ref, row["task"], row["metric"], model, row["alpha"]
        )
        if row["published"] is None:
            row["published_source"] = ""
    return table


def _pm(values: list[float], pct: bool = False) -> str:
    """mean ± std (the mean alone for one value); pct: in percent."""
    mean, std = mean_std(values)
    if mean is None:
        return "-"
    scale, unit, digits = (100, "%", 2) if pct else (1, "", 4)
    if len(values) == 1:
        return f"{mean * scale:.{digits}f}{unit}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}{unit}"


def _label(g: Group) -> str:
    if g.model == "teacher":
        return f"teacher ({g.results[0].teacher.name})" if g.results else "teacher"
    if g.variant:
        return f"{g.model} ({g.variant})"
    return f"{g.model} (alpha {g.alpha:g}{'' if g.augment == 'none' else ', ' + g.augment})"


def _task_table(groups: dict[tuple, Group], task: str, ref: dict, speed: dict) -> list[str]:
    metrics = metric_names(groups, task)
    head = [
        "model",
        "n",
        *metrics,
        "rel. degradation",
        "params",
        "transfer pairs",
        "speed-up, 10k candidates",
        "published (test)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in (g for g in groups.values() if g.task == task):
        pub = [f"{m} {v}" for m in metrics if (v := published(ref, task, m, g.model, g.alpha)[0])]
        if g.model == "dse" and g.alpha:
            pub = [f"avg. rel. degradation {ref['dse']['average_relative_degradation']}%"]
        deg = g.degradation("mean")  # per seed, the mean over the task's metrics
        params = g.mean_of("params")
        cells = [
            _label(g),
            str(len(g.results)),
            *(_pm(g.values(m)) for m in metrics),
            _pm(deg, pct=True) if deg else "-",
            f"{params / 1e6:.1f}M" if params else "-",
            f"{g.transfer_pairs():,.0f}" if g.model != "teacher" and g.results else "-",
            f"{speed['concat']:.0f}×" if g.model == "dse" and "concat" in speed else "-",
            ", ".join(pub) or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _variants(profile: Profile, student: str) -> list[tuple[float, str, str | None]]:
    """(alpha, augment, spec name) of the student's distilled variants, in the profile's order."""
    specs = [
        (float(s["alpha"]), s["augment"], s.get("name")) for s in profile.students if s["student"] == student
    ]
    return list(dict.fromkeys(v for v in specs if v[0]))


def _variant_name(alpha: float, augment: str, name: str | None) -> str:
    return name or f"alpha {alpha:g}" + ("" if augment == "none" else f", {augment}")


def _summary(groups: dict[tuple, Group], profile: Profile, ref: dict) -> list[str]:
    lines = []
    paper_tasks = [t for t in profile.tasks if t in PAPER_TASKS]
    other = [t for t in profile.tasks if t not in PAPER_TASKS]
    for alpha, augment, variant in _variants(profile, "dse"):
        avg = average_degradation(groups, "dse", alpha, paper_tasks, augment, variant)
        rest = average_degradation(groups, "dse", alpha, other, augment, variant)["per_task"]
        per = ", ".join(f"{t} {v:.2%}" for t, v in {**avg["per_task"], **rest}.items() if v is not None)
        if avg["mean"] is not None:
            name = _variant_name(alpha, augment, variant)
            lines.append(
                f"- **dse ({name}) average relative degradation over {', '.join(avg['per_task'])}: "
                f"{avg['mean']:.2%}** (published: {ref['dse']['average_relative_degradation']}% over the "
                f"paper's five tasks with BERT-large; {ref['dse']['source']}). Per task: {per}."
            )
    for alpha, augment, variant in _variants(profile, "bilstm"):
        with_kd = average_degradation(groups, "bilstm", alpha, profile.tasks, augment, variant)
        without = average_degradation(groups, "bilstm", 0.0, profile.tasks)
        if augment == "none" and with_kd["mean"] is not None and without["mean"] is not None:
            verdict = "helps" if with_kd["mean"] < without["mean"] else "does not help"
            lines.append(
                f"- **Distillation {verdict} the BiLSTM on average**: relative degradation "
                f"{with_kd['mean']:.2%} at alpha {alpha:g} vs {without['mean']:.2%} at alpha 0 "
                f"(mean over {', '.join(with_kd['per_task'])})."
            )
    return lines + _transfer_gains(groups, profile) + _named_gains(groups, profile)


def _named_gains(groups: dict[tuple, Group], profile: Profile) -> list[str]:
    """Each named spec (a multi-task student, another layer choice) against the unnamed spec of the same
    student, alpha and transfer set, when the profile has one, and against the named spec its `versus`
    names (an ablation against its recipe)."""
    lines = []
    for spec in (s for s in profile.students if s.get("name")):
        base = (spec["student"], float(spec["alpha"]), spec["augment"])
        against = [(base, f"{spec['student']} ({_variant_name(*base[1:], None)})")]
        if versus := spec.get("versus"):  # load_profile checked that a named spec has it
            other = next(s for s in profile.students if s.get("name") == versus)
            against.append(((other["student"], float(other["alpha"]), other["augment"], versus), versus))
        for variant, label in against:
            if gain := comparison(groups, profile.tasks, (*base, spec["name"]), variant):
                lines.append(
                    f"- **{spec['name']} vs {label}** (mean of each task's dev metrics, mean ± std over "
                    f"seeds): {gain}."
                )
    return lines


def _transfer_gains(groups: dict[tuple, Group], profile: Profile) -> list[str]:
    """Each student with a transfer set against the same student on gold pairs (alpha 0, and its alpha)."""
    lines = []
    for student in dict.fromkeys(s["student"] for s in profile.students):
        for alpha, augment, variant in (v for v in _variants(profile, student) if v[1] != "none"):
            for base in dict.fromkeys([(0.0, "none"), (alpha, "none")]):
                gain = comparison(groups, profile.tasks, (student, alpha, augment, variant), (student, *base))
                if gain:
                    what = variant or f"{augment}, alpha {alpha:g}"
                    lines.append(
                        f"- **{student} ({what}) vs {student} alpha {base[0]:g} on gold "
                        f"pairs** (mean of each task's dev metrics, mean ± std over seeds): {gain}."
                    )
    return lines


def _against(groups: dict[tuple, Group], base: dict[tuple, Group], name: str) -> list[str]:
    """Every model of this table against the same model of profile `name`'s (same task, student, alpha,
    transfer set; seed by seed): what a change around the cells, such as the teacher's backend, moved."""
    lines = [
        f"- {g.task}, {_label(g)}: {found}" for key, g in groups.items() if (found := gap(g, base.get(key)))
    ]
    if not lines:
        return []
    return [
        f"## Against profile `{name}`",
        "",
        f"Mean of each task's dev metrics, this table's cells vs the same cells of `{name}` (mean ± std over "
        "seeds; the gap in points is within noise when no larger than either std; per-seed differences).",
        "",
        *lines,
        "",
    ]


def _transfer(groups: dict[tuple, Group], out: Path, profile: Profile) -> list[str]:
    backbone = out / "cells" / "backbone" / "transfer.json"
    if not profile.transfer or not backbone.is_file():
        return []
    spec = profile.transfer
    base = json.loads(backbone.read_text())
    lines = [
        f"## Transfer: zero-shot {spec['task']} {spec.get('split', 'dev')}",
        "",
        "Each sentence embedded alone; Spearman of the cosine of the two embeddings with the gold score.",
        "",
        "| model | distilled on | Spearman (mean ± std over seeds) | n |",
        "|---|---|---|---|",
        f"| backbone before distillation, mean pooling | - | {base['spearman']:.4f} | 1 |",
    ]
    for g in groups.values():
        if g.transfer:
            where = (
                f"{g.task} (in-task: its encoder saw {g.task} train)" if g.task == spec["task"] else g.task
            )
            lines.append(f"| {_label(g)} | {where} | {_pm(g.transfer)} | {len(g.transfer)} |")
    return lines


def busy_hours(timings: list[dict]) -> float:
    """Hours with at least one cell running: the union of the cells' [start, end] intervals, so a table
    resumed in a later session does not count the time between its runs."""
    spans = sorted(
        (end - timedelta(seconds=t["wall_s"]), end)
        for t in timings
        for end in [datetime.fromisoformat(t["finished"])]
    )
    busy, until = 0.0, None
    for start, end in spans:
        if until is not None and start < until:
            start = until  # the overlap with earlier cells is already counted
        if end > start:
            busy += (end - start).total_seconds()
        until = end if until is None else max(until, end)
    return busy / 3600


def _provenance(out: Path) -> list[str]:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    line = f"Machine: {machine}."
    timings_path = out / "timings.json"
    if timings_path.is_file():
        timings = list(json.loads(timings_path.read_text()).values())
        total, busy = sum(t["wall_s"] for t in timings) / 3600, busy_hours(timings)
        line += (
            f" Cells: {total:.2f} h of cell wall time in total, {busy:.2f} h of wall time with "
            "at least one cell running (cells run in parallel when `workers` > 1; timings.json)."
        )
    return [line]


def _references(ref: dict) -> list[str]:
    return [
        "## Published reference numbers",
        "",
        f"- DSE: {ref['dse']['average_relative_degradation']}% average relative degradation against "
        f"BERT-large ({ref['dse']['source']}; {ref['dse']['note']}).",
        f"- Teacher rows: BERT-large on the GLUE test server ({ref['bert_large']['source']}).",
        f"- BiLSTM: {ref['bilstm']['source']} ({ref['bilstm']['note']}). Distilled (BiLSTM_SOFT): "
        f"{_numbers(ref['bilstm']['distilled'])}; labels only: {_numbers(ref['bilstm']['baseline'])}.",
        "- Ours are dev-set numbers (GLUE test labels are not public); published ones are test-set numbers.",
    ]


def _numbers(by_task: dict) -> str:
    return "; ".join(f"{t} " + ", ".join(f"{m} {v}" for m, v in ms.items()) for t, ms in by_task.items())


def markdown(
    groups: dict[tuple, Group], profile: Profile, out: Path, ref: dict, speed: dict, base: dict | None = None
) -> str:
    lines = [f"# The DSE paper's table, profile `{profile.name}`", "", *_provenance(out), ""]
    lines += ["## Summary", "", *_summary(groups, profile, ref), ""]
    lines += _against(groups, base, profile.baseline) if base else []
    lines += ["## Dev results (mean ± std over seeds)", ""]
    for task in profile.tasks:
        lines += [f"### {task}", "", *_task_table(groups, task, ref, speed), ""]
    if speed:
        lines += [
            f"Speed-up: scoring one query against 10,000 candidates with cached candidate embeddings vs the "
            f"cross-encoder (concat head {speed.get('concat', 0):.0f}×, "
            f"dot head {speed.get('dot', 0):.0f}×), from `make bench` (experiments/bench).",
            "",
        ]
    lines += [*_transfer(groups, out, profile), "", *_references(ref), ""]
    return "\n".join(lines)


def render(
    profile: Profile, out: Path, reference: Path, bench: Path, baseline: tuple[Profile, Path] | None = None
) -> None:
    """results.csv, results.md and results.png in `out`; `reference`: the published numbers (YAML),
    `bench`: `make bench`'s results.json (the speed-up column; absent: no column); `baseline`: the profile
    `profile.baseline` names and its output dir, whose cells this table is compared with."""
    groups = collect(profile, out)
    base = collect(*baseline) if baseline else None
    table = rows(groups)
    if not any(g.results for g in groups.values()):
        raise FileNotFoundError(f"{out}: no finished cells to render; run the cells first")
    ref = OmegaConf.to_container(OmegaConf.load(reference))
    speed = bench_speedup(bench)
    table = _with_published(table, ref)
    write_csv(out / "results.csv", list(table[0]), table)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(markdown(groups, profile, out, ref, speed, base))
    bar_chart(groups, profile, out / "results.png")
    size_chart(groups, profile, out / "transfer_size.png")
    log.info("rendered %s/results.{md,csv,png}", out)
