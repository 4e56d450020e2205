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
            label = "teacher" if g.model == "teacher" else f"{g.model} a={g.alpha:g}"
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
