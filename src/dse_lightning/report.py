"""Plain-text tables of results for the terminal (the end of `make demo`)."""

from __future__ import annotations


def summary_table(results: dict) -> str:
    """Teacher vs student on the task's dev metrics, with the student's relative degradation."""
    teacher, student = results["teacher"], results.get("student")
    names = list(teacher["metrics"])
    rows = [("model", "params", *names, "rel. degradation")]
    rows.append(
        (
            f"teacher ({teacher['name']})",
            f"{teacher['params'] / 1e6:.1f}M",
            *(f"{teacher['metrics'][m]:.4f}" for m in names),
            "-",
        )
    )
    if student:
        deg = student["relative_degradation"].get("mean")
        rows.append(
            (
                f"student ({student['name']}, alpha={student['alpha']})",
                f"{student['params'] / 1e6:.1f}M",
                *(f"{student['metrics'].get(m, float('nan')):.4f}" for m in names),
                f"{deg:.2%}" if deg is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return f"{results['task']} dev\n" + "\n".join(lines)
