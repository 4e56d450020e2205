"""Score queries against a candidate corpus with a trained student, candidates encoded once and cached.

    python -m dse_lightning.score --student logs/.../student/export --candidates corpus.txt \\
        --store stores/corpus --query "A man is playing a guitar." --top-k 5

The first run encodes the distinct candidates (one per line) into `--store`; later runs with the same
store load the embeddings (refused if another student made them). Queries come from `--query` (repeat
it) or `--queries FILE` (one per line). Output: one JSON line per query,
`{"query": ..., "hits": [{"rank": 1, "index": i, "sentence": ..., "score": ...}, ...]}`, on stdout or
in `--output`. Scores are P(positive) for binary tasks, the predicted score for regression, and
P(--label) for multiclass students.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .export.student_io import BACKENDS
from .scoring.index import Hit, open_index
from .utils.io import atomic_path


def read_lines(path: str | Path, option: str) -> list[str]:
    """Non-blank lines of a UTF-8 text file, stripped; an error names the option and file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: no such file")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{option} {path}: no sentences (expected one per line)")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dse_lightning.score", description=__doc__.split("\n")[0])
    p.add_argument("--student", required=True, help="a student export folder (<run>/student/export)")
    p.add_argument("--store", required=True, help="embedding store folder: built if absent, else loaded")
    p.add_argument("--candidates", help="candidate sentences, one per line (needed to build the store)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", action="append", help="a query sentence (repeatable)")
    q.add_argument("--queries", help="query sentences, one per line")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--label", help="multiclass students: the label whose probability ranks candidates")
    p.add_argument("--rebuild", action="store_true", help="re-encode the candidates even if a store exists")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per encoder batch")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="how the student encodes: torch, or its ONNX graph (onnx, onnx-int8: dse_lightning.export.onnx)",
    )
    p.add_argument("--output", help="write the JSON lines here instead of stdout")
    return p.parse_args(argv)


def to_json_lines(queries: list[str], hits: list[list[Hit]]) -> str:
    rows = [
        {
            "query": query,
            "hits": [
                {"rank": r, "index": h.index, "sentence": h.sentence, "score": h.score}
                for r, h in enumerate(found, start=1)
            ],
        }
        for query, found in zip(queries, hits, strict=True)
    ]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    candidates = read_lines(args.candidates, "--candidates") if args.candidates else None
    queries = args.query or read_lines(args.queries, "--queries")
    index = open_index(
        args.student,
        args.store,
        candidates,
        rebuild=args.rebuild,
        label=args.label,
        batch_size=args.batch_size,
        backend=args.backend,
    )
    text = to_json_lines(queries, index.search(queries, args.top_k))
    if args.output:
        with atomic_path(args.output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
