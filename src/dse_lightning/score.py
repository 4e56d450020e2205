"""Score queries against a candidate corpus with a trained student, candidates encoded once and cached.

    python -m dse_lightning.score --student logs/.../student/export --candidates corpus.txt \\
        --store stores/corpus --query "A man is playing a guitar." --top-k 5

The first run encodes the distinct candidates (one per line, read as a stream) into `--store` (`--dtype`
float16 / int8 keep it compact; `python -m dse_lightning.build_store` builds one under any trainer); later
runs with the same store load the embeddings (refused if another student made them). `--search ivf|hnsw`
searches the dot head's index approximately; `--shortlist M` scores the concat head in two stages.
Queries come from `--query` (repeat it) or `--queries FILE` (one per line). Output: one JSON line per query,
`{"query": ..., "hits": [{"rank": 1, "index": i, "sentence": ..., "score": ...}, ...]}`, on stdout or
in `--output`. Scores are P(positive) for binary tasks, the predicted score for regression, and
P(--label) for multiclass students.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .embeddings.ann import MODES, Search
from .embeddings.compact import DTYPES
from .export.backends import BACKENDS, DEFAULT
from .scoring.corpus import read_stream
from .scoring.index import Hit, open_index
from .utils.io import atomic_path


def read_queries(args: argparse.Namespace) -> list[str]:
    """The queries; an empty or whitespace-only one is refused (from a file: with its line)."""
    if args.queries:
        return list(read_stream(args.queries, "--queries", skip_blank=False))
    empty = [i for i, q in enumerate(args.query, start=1) if not q.strip()]
    if empty:
        raise ValueError(f"--query: query {empty[0]} of {len(args.query)} is empty or whitespace only")
    return args.query


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
    p.add_argument(
        "--task",
        help="a multi-task student's head to score with (its store serves every head: encoded once)",
    )
    p.add_argument("--rebuild", action="store_true", help="re-encode the candidates even if a store exists")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per encoder batch")
    p.add_argument(
        "--backend",
        choices=BACKENDS,  # the registry (export/backends/), as it is when parsing
        default=DEFAULT,
        help="how the student encodes: torch, or a graph of its export (onnx, onnx-int8, openvino, "
        "openvino-int8: dse_lightning.export.onnx adds them); any registered backend",
    )
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="how a new store keeps its rows: float32, float16, int8 (faiss 8-bit scalar quantizer)",
    )
    s = p.add_argument_group("search (embeddings/ann.py)")
    s.add_argument(
        "--search",
        choices=MODES,
        default="exact",
        help="dot head: exact or approximate (ivf, hnsw) search; concat head: the shortlist's",
    )
    s.add_argument("--nlist", type=int, help="ivf: inverted lists (default sqrt(N))")
    s.add_argument("--nprobe", type=int, default=Search.nprobe, help="ivf: lists visited per query")
    s.add_argument("--hnsw-m", type=int, default=Search.hnsw_m, help="hnsw: links per node")
    s.add_argument("--ef-search", type=int, default=Search.ef_search, help="hnsw: search breadth")
    s.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="exact search: scan the rows in this many parts at once (one thread each)",
    )
    s.add_argument(
        "--shortlist",
        type=int,
        help="concat head: re-score only the M candidates nearest by cosine (two-stage)",
    )
    p.add_argument("--output", help="write the JSON lines here instead of stdout")
    return p.parse_args(argv)


def search_of(args: argparse.Namespace) -> Search:
    return Search(args.search, args.nlist, args.nprobe, args.hnsw_m, args.ef_search, args.search_threads)


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
    queries = read_queries(args)
    if args.candidates:
        next(read_stream(args.candidates, "--candidates"))  # a missing or empty file, named before any work
    index = open_index(
        args.student,
        args.store,
        args.candidates,  # streamed
        rebuild=args.rebuild,
        label=args.label,
        batch_size=args.batch_size,
        backend=args.backend,
        dtype=args.dtype,
        search=search_of(args),
        shortlist=args.shortlist,
        task=args.task,
    )
    text = to_json_lines(queries, index.search(queries, args.top_k))
    if args.output:
        with atomic_path(args.output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
