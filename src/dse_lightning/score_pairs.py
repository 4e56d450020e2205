"""Score a file of pairs with a trained student; the scores are written as new column(s) of its rows.

    python -m dse_lightning.score_pairs --student runs/x/student/export --input pairs.csv \\
        --output scored.csv [--sentence1 question1 --sentence2 question2] [--backend onnx-int8]

Input and output: CSV, TSV, JSON Lines or parquet (by suffix, or --format for the input), read by
datasets' own loaders (CSV fields as the strings they are). Scores: `score` (a binary task's P(positive),
or the regression score) or `score_<label>` for each class of a multiclass task; exactly what
`load_student(export).score(a, b)` returns for the same pairs in one call (it is that call, with a
progress bar). A row without two sentences is refused naming its line; the output is written atomically.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import datasets

from .data.file_source import LOADERS, read_table, row_place, table_format
from .export import load_student
from .export.backends import DEFAULT
from .utils.io import atomic_path

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dse_lightning.score_pairs", description=__doc__.split("\n")[0]
    )
    p.add_argument("--student", required=True, help="a student export folder (<run>/student/export)")
    p.add_argument("--input", required=True, type=Path, help="the pairs: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--output", required=True, type=Path, help="where the scored rows go (format by suffix)")
    p.add_argument("--sentence1", default="sentence1", help="the input's first-sentence column")
    p.add_argument("--sentence2", default="sentence2", help="the input's second-sentence column")
    p.add_argument("--format", help=f"the input's format, one of {list(LOADERS)} (default: its suffix)")
    p.add_argument("--column", default="score", help="the new column (score_<label> per class if several)")
    p.add_argument("--backend", default=DEFAULT, help="how the student encodes (load_student's backends)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences encoded at once")
    return p.parse_args(argv)


def check_pairs(table: datasets.Dataset, path: Path, fmt: str, columns: tuple[str, str]) -> None:
    """Both columns present, every row with two non-empty sentences; the error names file, lines, columns."""
    if missing := [c for c in columns if c not in table.column_names]:
        raise ValueError(
            f"{path}: no column(s) {missing} (--sentence1/--sentence2); found {table.column_names}"
        )
    pairs = zip(table[columns[0]], table[columns[1]], strict=True)
    bad = [i for i, (a, b) in enumerate(pairs) if not all(isinstance(s, str) and s.strip() for s in (a, b))]
    if bad:
        places = [row_place(fmt, i) for i in bad[:5]]
        where = ", ".join(f"line {p}" if isinstance(p, int) else p for p in places)
        raise ValueError(
            f"{path}: {len(bad)} row(s) without two sentences in columns {list(columns)} (first: {where}); "
            "nothing was written"
        )


def with_scores(table: datasets.Dataset, scores, column: str, labels: list[str]) -> datasets.Dataset:
    names = [column] if scores.dim() == 1 else [f"{column}_{label}" for label in labels]
    if taken := [n for n in names if n in table.column_names]:
        raise ValueError(f"the input already has column(s) {taken}; name the new one with --column")
    values = [scores.tolist()] if scores.dim() == 1 else scores.T.tolist()
    for name, column_values in zip(names, values, strict=True):
        table = table.add_column(name, column_values)
    return table


def write_table(table: datasets.Dataset, path: Path) -> None:
    """The rows into `path` in its suffix's format, atomically (a failed write leaves nothing)."""
    fmt = table_format(path)
    if fmt not in LOADERS:
        raise ValueError(f"--output {path}: a format of {list(LOADERS)} by its suffix")
    with atomic_path(path) as tmp:
        if fmt in ("csv", "tsv"):
            table.to_csv(str(tmp), index=False, sep="," if fmt == "csv" else "\t")
        elif fmt == "parquet":
            table.to_parquet(str(tmp))
        else:
            table.to_json(str(tmp), lines=True, force_ascii=False)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if not args.input.is_file():
        raise FileNotFoundError(f"--input {args.input}: no such file")
    fmt = table_format(args.input, args.format)
    table = read_table(args.input, fmt, "--format")
    check_pairs(table, args.input, fmt, (args.sentence1, args.sentence2))
    student = load_student(args.student, args.backend)
    scores = student.score(table[args.sentence1], table[args.sentence2], args.batch_size, progress=True)
    write_table(with_scores(table, scores, args.column, student.spec["labels"]), args.output)
    log.info("scored %d pairs into %s", len(table), args.output)


if __name__ == "__main__":
    main()
