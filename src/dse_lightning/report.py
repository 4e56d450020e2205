"""Tables of results: the terminal table after a run, the markdown / CSV writers every table uses (sweep
summaries, the paper table), and `python -m dse_lightning.report` (markdown, one row per results.json)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from .results import RunResult
from .utils.io import atomic_path


def _cell(value) -> str:
    text = f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "")
    return text.replace("|", "/")


def markdown_table(columns: list[str], rows: list[dict]) -> str:
    """A markdown table of `rows` (dicts) over `columns`; floats to 4 places, a missing value is blank."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows])


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


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
    return f"{result.task} dev\n" + "\n".join(lines) + _test_block(result)


def _test_block(result: RunResult) -> str:
    """The test split's metrics, apart from dev (which chose the models), when the task has one."""
    models = [(f"teacher ({result.teacher.name})", result.teacher), ("student", result.student)]
    rows = [f"{name}: {_fmt(m.test_metrics)}" for name, m in models if m is not None and m.test_metrics]
    return f"\n{result.task} test\n" + "\n".join(rows) if rows else ""


def _fmt(metrics: dict) -> str:
    return " / ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _loss_name(loss: dict) -> str:
    kind = loss.get("kind", "mse")
    return f"kl T={loss.get('temperature')}" if kind == "kl" else kind


COLUMNS = ["run", "task", "student", "alpha", "folds", "loss", "teacher (dev)", "student (dev)", "rel. degr."]
COLUMNS += ["teacher s", "student s"]


def _row(path: Path) -> dict:
    r = RunResult.read(path)
    t, s = r.teacher, r.student
    row = {"run": path.parent.name if path.name == "results.json" else path.stem, "task": r.task}
    row |= {"teacher (dev)": _fmt(t.metrics), "teacher s": t.train_time_s}
    if s:
        deg = s.relative_degradation.get("mean")
        row |= {
            "student": s.name,
            "alpha": s.alpha,
            "folds": s.targets.get("folds", 1),
            "loss": _loss_name(s.loss),
        }
        row |= {"student (dev)": _fmt(s.metrics), "student s": s.train_time_s}
        row["rel. degr."] = f"{deg:.2%}" if deg is not None else None
    return {c: "-" if row.get(c) is None else str(row[c]) for c in COLUMNS}


def results_markdown(paths: list[Path]) -> str:
    """One row per results.json: teacher and student dev metrics, relative degradation, times."""
    return markdown_table(COLUMNS, [_row(Path(p)) for p in paths])


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
