"""The quality-speed frontier: dev metric (MRPC, STS-B) against encode sentences/s for the teacher and each
student depth, fp32 and int8, as a plot and a table (experiments/frontier).

    make bench BENCH_ARGS="--search-ns --out experiments/frontier/bench"   # alone on the machine
    python -m dse_lightning.bench.frontier    # after that and the frontier's cells

Quality: each seed's exported student evaluated on dev as served (`export.evaluate`): by torch, by the
int8 ONNX graph and by the static int8 OpenVINO graph (added to the export when missing, calibrated on
the task's train sentences). 6 layers are the cpu table's `dse_pairs_a0.5` cells,
the smaller students the frontier profiles' (`SOURCES`). Speed: the benchmark's `encode_speed` rows (the
same depths and backends, on the same sentences and threads; a variant is timed by its depth's rows);
the teacher, a cross-encoder, has pairs/s instead (one forward pass per pair). Evaluations are kept in
`evaluations.json` (keyed by each cell's folder relative to it), so a rerun only evaluates what is new.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..export.backends import BACKENDS, DEFAULT
from ..export.calibration import calibration_inputs, calibration_source
from ..export.evaluate import evaluate_export
from ..export.onnx import add_onnx
from ..export.student_io import KIND
from ..store import read_meta
from ..table.cells import result
from ..table.profile import load_profile
from ..utils.io import atomic_path, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One student of the frontier: its depth (the speed rows it is timed by) and where its cells are."""

    layers: int
    profile: str
    out: str
    spec: str  # the profile's student name


FRONTIER = "experiments/frontier"
SOURCES = {  # the model's label -> its cells
    "dse 6 layers": Source(
        6, "experiments/paper_table/profiles/cpu.yaml", "experiments/paper_table/cpu", "dse_pairs_a0.5"
    ),
    "dse 6 layers, lr 1e-4, seeds 51-53": Source(
        6, f"{FRONTIER}/profile_six_lr.yaml", FRONTIER, "dse_pairs_lr1e-4_a0.5"
    ),
    "dse 3 layers": Source(3, f"{FRONTIER}/profile.yaml", FRONTIER, "dse3_pairs_a0.5"),
    "dse 3 layers (2nd, 4th, 6th)": Source(3, f"{FRONTIER}/profile.yaml", FRONTIER, "dse3spread_pairs_a0.5"),
    "dse 3 layers, 3 epochs": Source(3, f"{FRONTIER}/profile_epochs.yaml", FRONTIER, "dse3_pairs_a0.5_e3"),
    "dse 3 layers (2nd, 4th, 6th), 3 epochs": Source(
        3, f"{FRONTIER}/profile_epochs.yaml", FRONTIER, "dse3spread_pairs_a0.5_e3"
    ),
    "dse 3 layers (2nd, 4th, 6th), 3 epochs, fresh seeds": Source(
        3, f"{FRONTIER}/profile_seeds.yaml", FRONTIER, "dse3spread_pairs_a0.5_e3"
    ),
    "dse 3 layers (2nd, 4th, 6th), hidden states of 6 layers, fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate.yaml", FRONTIER, "dse3spread_hidden_pairs_a0.5"
    ),
    "dse 3 layers (2nd, 4th, 6th) of the 6-layer student, its hidden states x100, fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate_init.yaml", FRONTIER, "dse3init_hidden_pairs_a0.5"
    ),
    "dse 3 layers (2nd, 4th, 6th) of the 6-layer student, hidden states x100, lr 8e-4, fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate_lr.yaml", FRONTIER, "dse3init_hidden_pairs_lr8e-4_a0.5"
    ),
    "dse 3 layers (4th, 5th, 6th) of the 6-layer student, hidden states x100, lr 8e-4, fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate_top.yaml", FRONTIER, "dse3top_hidden_pairs_lr8e-4_a0.5"
    ),
    "the same, its source the lr-1e-4 6-layer student, fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate_src.yaml", FRONTIER, "dse3top_hidden_pairs_lr8e-4_src1e-4_a0.5"
    ),
    "dse 3 layers (4th, 5th, 6th) of the 6-layer student, hidden states x100 and attention x30, lr 8e-4, "
    "fresh seeds": Source(
        3, f"{FRONTIER}/profile_intermediate_att.yaml", FRONTIER, "dse3top_hidden_att30_pairs_lr8e-4_a0.5"
    ),
    "dse 2 layers": Source(2, f"{FRONTIER}/profile.yaml", FRONTIER, "dse2_pairs_a0.5"),
}


def frontier_backends() -> list[str]:
    """The export as trained and each registered backend that trades quality for speed (int8): the fp32
    graphs serve the torch embeddings to float tolerance, so they would repeat its quality."""
    return [DEFAULT] + [name for name, b in BACKENDS.items() if b.precision != "fp32"]


def _cells(task: str, model: str) -> list[Path]:
    source = SOURCES[model]
    return [
        c.dir(Path(source.out))
        for c in load_profile(source.profile).student_cells()
        if c.task == task
        and c.name.rsplit("_s", 1)[0] == source.spec
        and (c.dir(Path(source.out)) / "results.json").is_file()
    ]


def _evaluate(cell: Path, task: str, backend: str, done: dict, folder: Path) -> dict[str, float] | None:
    """The export's dev metrics as served by `backend`, kept in `done` under the cell's path relative to
    `folder` (evaluations.json's). Exports are not kept in git: where a cell's is gone, torch takes the
    training run's own dev evaluation (results.json; the same figures as serving the export, to 5e-7 on
    the 6-layer cells) and int8 is None (that seed is left out of its row)."""
    key = f"{os.path.relpath(cell, folder)}|{backend}"
    export = cell / "student" / "export"
    if key not in done and not export.is_dir():
        log.warning(
            "%s: no export (not kept in git); %s",
            cell,
            "its run's dev metrics" if backend == DEFAULT else "seed left out",
        )
        return result(cell).student.metrics if backend == DEFAULT else None
    if key not in done:
        if not BACKENDS[backend].present(read_meta(export, KIND)):
            add_onnx(export, calibration_inputs(task), calibration_source(task))
        done[key] = evaluate_export(export, task, backend)
        log.info("%s %s: %s", cell, backend, done[key])
    return done[key]


def quality(tasks: list[str], evaluations: Path) -> list[dict]:
    """Per task, depth and backend: the mean over seeds of the task's metrics (and their std)."""
    done = json.loads(evaluations.read_text()) if evaluations.is_file() else {}
    rows = []
    for task in tasks:
        for model in SOURCES:
            cells = _cells(task, model)
            if not cells:
                continue  # a variant run on the other task only
            for backend in frontier_backends():
                evaluated = (_evaluate(c, task, backend, done, evaluations.parent) for c in cells)
                per_seed = [m for m in evaluated if m is not None]
                write_json(evaluations, done)  # after each: a rerun evaluates only what is new
                scores = [statistics.fmean(m.values()) for m in per_seed]
                rows.append(_row(task, model, backend, per_seed, scores))
    return rows


def _row(task: str, model: str, backend: str, per_seed: list[dict], scores: list[float]) -> dict:
    metrics = {k: statistics.fmean(m[k] for m in per_seed) for k in per_seed[0]} if per_seed else {}
    return {
        "task": task,
        "model": model,
        "layers": SOURCES[model].layers,
        "backend": backend,
        "seeds": len(scores),
        "metrics": metrics,
        "score": statistics.fmean(scores) if scores else None,
        "score_std": statistics.stdev(scores) if len(scores) > 1 else None,
    }


def teacher_rows(tasks: list[str], bench: dict) -> list[dict]:
    rows = []
    for task in tasks:
        (cell,) = _cells_teacher(task)
        metrics = result(cell).teacher.metrics
        rows.append(
            {
                "task": task,
                "model": "teacher (cross-encoder)",
                "layers": 6,
                "backend": DEFAULT,
                "seeds": 1,
                "metrics": metrics,
                "score": statistics.fmean(metrics.values()),
                "score_std": None,
                "pairs_per_s": bench["rows"][0]["teacher_pairs_per_s"],
            }
        )
    return rows


def _cells_teacher(task: str) -> list[Path]:
    source = SOURCES["dse 6 layers"]
    return [c.dir(Path(source.out)) for c in load_profile(source.profile).teacher_cells() if c.task == task]


def attach_speed(rows: list[dict], bench: dict) -> None:
    speed = {(r["layers"], r["backend"]): r["sentences_per_s"] for r in bench.get("encode_speed") or []}
    if not speed:
        raise ValueError("the benchmark's results have no encode_speed rows: run `make bench` first")
    for r in rows:
        if "pairs_per_s" not in r:
            r["sentences_per_s"] = speed[(r["layers"], r["backend"])]


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| task | model | backend | seeds | dev metrics (mean over seeds) | score (± std) "
        "| encode sentences/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
        std = f" ± {r['score_std']:.4f}" if r["score_std"] is not None else ""
        speed = f"{r['pairs_per_s']:.1f} pairs/s" if "pairs_per_s" in r else f"{r['sentences_per_s']:.1f}"
        lines.append(
            f"| {r['task']} | {r['model']} | {r['backend']} | {r['seeds']} | {metrics} | "
            f"{_fmt(r['score'])}{std} | {speed} |"
        )
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    colour = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}  # one per model, both panels
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 7.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in rows if r["task"] == task and r["score"] is not None):
            x = r.get("sentences_per_s") or r["pairs_per_s"]
            marker = "*" if "pairs_per_s" in r else BACKENDS[r["backend"]].marker
            seeds = f"{r['seeds']} seed{'s' if r['seeds'] > 1 else ''}"
            label = r["model"] if "pairs_per_s" in r else f"{r['model']}, {r['backend']} ({seeds})"
            ax.errorbar(x, r["score"], yerr=r["score_std"] or 0, fmt=marker, capsize=3, label=label, ms=8,
                        color=colour[r["model"]])  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("encode sentences/s (teacher: pairs/s), 2 threads")
        ax.set_ylabel("dev score (mean of the task's metrics)")
        ax.set_title(f"{task}: quality vs speed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # off the points
    shown = dict.fromkeys(r["backend"] for r in rows if "pairs_per_s" not in r)
    fig.suptitle(", ".join(f"{BACKENDS[b].marker} {BACKENDS[b].label}" for b in shown), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The quality-speed frontier: experiments/frontier/")
    p.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"])
    p.add_argument(  # the frontier's own bench run (encode and training rows; no search rows)
        "--bench", type=Path, default=Path("experiments/frontier/bench/results.json")
    )
    p.add_argument("--out", type=Path, default=Path("experiments/frontier"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    bench = json.loads(args.bench.read_text())
    evaluated = quality(args.tasks, args.out / "evaluations.json")
    rows = teacher_rows(args.tasks, bench) + [r for r in evaluated if r["seeds"]]  # no export, no int8 row
    attach_speed(rows, bench)
    bench_path = os.path.relpath(args.bench, args.out)  # relative to the record's folder, as every path
    write_json(args.out / "results.json", {"rows": rows, "bench": bench_path})
    text = ["# The quality-speed frontier", "", "![frontier](frontier.png)", "", *table(rows), ""]
    with atomic_path(args.out / "results.md") as tmp:
        tmp.write_text("\n".join(text))
    plot(rows, args.out / "frontier.png")
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
