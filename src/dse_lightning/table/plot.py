"""The bar chart: per task, every model's dev metrics (mean over seeds, std as error bars)."""

from __future__ import annotations

from pathlib import Path

from ..utils.io import atomic_path
from .collect import Group, mean_std, metric_names
from .profile import Profile


def bar_chart(groups: dict[tuple, Group], profile: Profile, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    tasks = [t for t in profile.tasks if any(g.results for g in groups.values() if g.task == t)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        task_groups = [g for g in groups.values() if g.task == task and g.results]
        metrics = metric_names(groups, task)
        width = 0.8 / len(task_groups)
        for i, g in enumerate(task_groups):
            stats = [mean_std(g.values(m)) for m in metrics]
            xs = [j + i * width for j in range(len(metrics))]
            augment = "" if g.augment == "none" else f" {g.augment}"
            default = "teacher" if g.model == "teacher" else f"{g.model}{augment} a={g.alpha:g}"
            label = g.variant or default
            ax.bar(xs, [s[0] for s in stats], width, yerr=[s[1] for s in stats], label=label, capsize=2)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
        lows = [v for g in task_groups for m in metrics for v in g.values(m)]
        ax.set_ylim(max(0.0, min(lows) - 0.1), min(1.0, max(lows) + 0.05))
        ax.set_title(f"{task} (dev)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)  # outside the axes: no bar hidden
    fig.suptitle(f"teacher vs students, profile {profile.name} (mean ± std over seeds)")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _source(g: Group) -> str | None:
    """Where a student's targets came from (logits, ensemble, ...): lines do not mix sources."""
    return g.results[0].student.targets.get("source")


def _size_lines(ax, done: list[Group], task: str) -> None:
    """One line per (student, alpha, generator, target source) over its transfer-set sizes, from its
    gold-only twin at 0; each student's alpha-0 (labels only) mean as a dotted line."""
    keys = {(g.model, g.alpha, g.augment, _source(g)) for g in done if g.task == task and g.augment != "none"}
    for model, alpha, augment, source in sorted(keys, key=str):
        same = [
            g
            for g in done
            if (g.task, g.model, g.alpha, _source(g)) == (task, model, alpha, source)
            and g.augment in ("none", augment)
        ]
        points = sorted((g.transfer_pairs(), mean_std(g.scores())) for g in same)
        xs, ys, errs = [p[0] for p in points], [p[1][0] for p in points], [p[1][1] for p in points]
        what = "" if source == "logits" else f" ({source})"
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=2, label=f"{model} a={alpha:g} {augment}{what}")
    for g in done:
        if g.task == task and g.alpha == 0:
            ax.axhline(mean_std(g.scores())[0], ls=":", lw=1, color="grey")
            ax.annotate(f"{g.model} alpha 0", (0, mean_std(g.scores())[0]), fontsize=6, color="grey")


def size_chart(groups: dict[tuple, Group], profile: Profile, path: Path) -> bool:
    """Per task, each student's mean dev metric against the size of its transfer set (0: gold pairs only),
    with the teacher (dashed); False (no file) when no student has a transfer set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [g for g in groups.values() if g.results and g.model != "teacher"]
    tasks = [t for t in profile.tasks if any(g.task == t and g.augment != "none" for g in done)]
    if not tasks:
        return False
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        _size_lines(ax, done, task)
        teacher = [g for g in groups.values() if g.task == task and g.model == "teacher" and g.results]
        if teacher:
            ax.axhline(mean_std(teacher[0].scores())[0], ls="--", lw=1, color="black", label="teacher")
        ax.set_xlabel("teacher-labelled transfer pairs")
        ax.set_ylabel("dev, mean of the task's metrics")
        ax.set_title(f"{task} (dev)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True
