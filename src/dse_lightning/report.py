"""Tables of results: the terminal table after a run, and `python -m dse_lightning.report` (markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .results import RunResult


def summary_table(result: RunResult) -> str:
    """Teacher vs student on the task's dev metrics, with the student's relative degradation."""
    teacher, student = result.teacher, result.student
    names = list(teacher.metrics)
    rows = [("model", "params", *names, "rel. degradation")]
    rows.append(
        (
            f"teacher ({teacher.name})",
            f"{teacher.params / 1e6:.1f}M",
            *(f"{teacher.metrics[m]:.4f}" for m in names),
            "-",
        )
    )
    if student:
        deg = student.relative_degradation.get("mean")
        rows.append(
            (
                f"student ({student.name}, alpha={student.alpha})",
                f"{student.params / 1e6:.1f}M",
                *(f"{student.metrics.get(m, float('nan')):.4f}" for m in names),
                f"{deg:.2%}" if deg is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return f"{result.task} dev\n" + "\n".join(lines)


def _fmt(metrics: dict) -> str:
    return " / ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _loss_name(loss: dict) -> str:
    kind = loss.get("kind", "mse")
    return f"kl T={loss.get('temperature')}" if kind == "kl" else kind


def _row(path: Path) -> str:
    r = RunResult.read(path)
    t, s = r.teacher, r.student
    name = path.parent.name if path.name == "results.json" else path.stem
    deg = s.relative_degradation.get("mean") if s else None
    cells = [
        name,
        r.task,
        s.name if s else "-",
        s.alpha if s else "-",
        s.targets.get("folds", 1) if s else "-",
        _loss_name(s.loss) if s else "-",
        _fmt(t.metrics),
        _fmt(s.metrics) if s else "-",
        f"{deg:.2%}" if deg is not None else "-",
        t.train_time_s if t.train_time_s is not None else "-",
        s.train_time_s if s and s.train_time_s is not None else "-",
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def results_markdown(paths: list[Path]) -> str:
    """One row per results.json: teacher and student dev metrics, relative degradation, times."""
    cols = [
        "run",
        "task",
        "student",
        "alpha",
        "folds",
        "loss",
        "teacher (dev)",
        "student (dev)",
        "rel. degr.",
        "teacher s",
        "student s",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [_row(Path(p)) for p in paths]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Markdown table of results.json files")
    parser.add_argument("results", nargs="+", type=Path, help="results.json files (or run dirs)")
    args = parser.parse_args(argv)
    paths = [p / "results.json" if p.is_dir() else p for p in args.results]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such results file: {', '.join(missing)}")
    print(results_markdown(paths))


if __name__ == "__main__":
    main()
