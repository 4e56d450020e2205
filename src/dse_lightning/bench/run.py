"""One benchmark run: encode real sentences, time scoring at each N, time the teacher, compute the bounds.

The phases run in this order so that the peak-memory reading after encoding sees the student alone,
and the teacher's time budget is spent last.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from ..embeddings.encode import encode_corpus
from ..export.backends import DEFAULT
from ..export.calibration import sample_calibration
from ..scoring.corpus import read_stream
from ..scoring.store import student_identity
from ..utils.io import sha256_file
from .data import real_sentences
from .encode_speed import encode_speed
from .flops import flop_bounds, teacher_flops_per_pair
from .machine import CpuMeter, machine_info
from .models import exported_student, paper_student
from .peaks import gemm_peaks
from .rows import make_rows
from .score_timing import time_query_encode, time_scoring
from .search_speed import SearchContext, draw, draw_distinct, time_search
from .teacher_backends import teacher_export, teacher_model, time_teacher_backends
from .timing import memory_bandwidth, time_encode
from .train_speed import train_speed

log = logging.getLogger(__name__)


def _candidates(pool: list[str], pool_emb: torch.Tensor, n: int, seed: int) -> tuple[list[str], torch.Tensor]:
    """n candidates drawn with replacement from the encoded real sentences: texts and (n, d) rows."""
    idx = torch.randint(len(pool), (n,), generator=torch.Generator().manual_seed(seed))
    return [pool[i] for i in idx.tolist()], pool_emb[idx].contiguous()


def _student_phase(cfg: SimpleNamespace, sentences: list[str], rng: random.Random) -> SimpleNamespace:
    """Build the student, encode distinct real sentences once (the store pass), embed the queries."""
    if cfg.student:
        student = exported_student(cfg.student, cfg.hidden)
    else:
        student = paper_student(cfg.backbone, cfg.max_length, cfg.hidden, cfg.backbone_name)
    pool = rng.sample(sentences, min(cfg.encode_sentences, len(sentences)))
    pool_emb, encode = time_encode(student.encode_fn, pool, cfg.batch_size)  # (P, d)
    queries = rng.sample(sentences, cfg.queries)
    encode["query_encode_s"] = time_query_encode(student.encode_fn, queries)
    query_emb = encode_corpus(student.encode_fn, queries, progress=False)  # (Q, d)
    return SimpleNamespace(student=student, pool=pool, pool_emb=pool_emb, encode=encode, queries=queries,
                           query_emb=query_emb)  # fmt: skip


def _scoring_phase(cfg: SimpleNamespace, st: SimpleNamespace) -> tuple[list[str], dict, dict]:
    """Candidate texts, scoring timings, and the memory bandwidth measured around them."""
    cand_text, cand_emb = _candidates(st.pool, st.pool_emb, max(cfg.ns), cfg.seed)
    bandwidth = [memory_bandwidth(cfg.copy_gib)]
    scoring = time_scoring(st.student.heads, cand_emb, st.query_emb, cfg.ns, cfg)
    bandwidth.append(memory_bandwidth(cfg.copy_gib))
    best = max(bandwidth, key=lambda b: b["gb_per_s"])  # the highest: the strictest memory floor
    return cand_text, scoring, {**best, "runs_gb_per_s": [b["gb_per_s"] for b in bandwidth]}


def _teacher_phase(
    cfg: SimpleNamespace, st: SimpleNamespace, cand_text: list[str]
) -> tuple[dict, dict, dict]:
    """The cross-encoder's timings at every backend (torch's is `teacher`, what the FLOP bounds and the
    first speed-up column read), its dev metrics per backend for a trained export, and the FLOP bounds at
    the teacher's measured mean pair length."""
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as folder:
        path = teacher_export(cfg, Path(folder))
        backends = time_teacher_backends(cfg, path, st.queries, cand_text)
        teacher = backends["timings"][DEFAULT]
        model, tokens = teacher_model(path, teacher, st.queries, cand_text, cfg)
    teacher["mean_pair_tokens"] = tokens
    concat = st.student.heads["concat"]
    bounds = flop_bounds(
        teacher_flops_per_pair(model, tokens),
        d_concat=st.student.embed_dim, hidden=concat.fc1.out_features, outputs=concat.fc2.out_features,
        d_dot=st.student.embed_dim,
    )  # fmt: skip
    name = cfg.teacher or f"{cfg.backbone_name}, random classifier"
    return {"backbone": name, "num_labels": model.config.num_labels, **teacher}, backends, bounds


def _encode_speed_phase(cfg: SimpleNamespace, pool: list[str], sentences: list[str]) -> tuple[list, dict]:
    """Encode throughput of exports at each of `cfg.encode_layers` depths and backends (none: skipped)
    and the GEMM peaks they are read against; the static int8 graphs calibrated on a seeded sample of the
    sentences outside the timed pool."""
    if not cfg.encode_layers:
        return [], {}
    peaks = gemm_peaks()
    timed = set(pool)
    rest = [s for s in sentences if s not in timed]
    calibration = sample_calibration(rest, seed=cfg.seed)
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as folder:
        rows = encode_speed(
            cfg.backbone,
            pool,
            cfg.encode_layers,
            cfg.max_length,
            cfg.batch_size,
            Path(folder),
            calibration,
            peaks,
        )
    return rows, peaks


def _train_speed_phase(cfg: SimpleNamespace) -> list[dict]:
    """Training throughput, project batching vs fixed padding, on the first task (0 steps: skipped)."""
    if not cfg.train_steps:
        return []
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as cache:  # its own tokenisation cache
        return train_speed(cfg, cfg.tasks[0], Path(cache))


def _search_pool(cfg: SimpleNamespace, sentences: list[str]) -> tuple[list[str], list[str], torch.Tensor]:
    """Queries, the pool and which pool sentence each candidate row is. Default: a pool of real sentences
    outside the queries, rows drawn with replacement; `--search-corpus`: the file's distinct sentences
    (outside the queries), each row a different one."""
    rng = random.Random(cfg.seed + 1)
    shuffled = rng.sample(sentences, len(sentences))
    queries, n_max = shuffled[: cfg.search_queries], max([*cfg.search_ns, *cfg.two_stage_ns])
    if not cfg.search_corpus:
        pool = shuffled[cfg.search_queries :][: cfg.search_pool]
        return queries, pool, draw(n_max, len(pool), cfg.seed)
    asked = set(queries)
    pool = [s for s in read_stream(cfg.search_corpus, "--search-corpus") if s not in asked][:n_max]
    if len(pool) < n_max or len(set(pool)) < len(pool):
        raise ValueError(
            f"--search-corpus {cfg.search_corpus}: {len(set(pool))} distinct sentences besides the "
            f"{len(queries)} queries, not {n_max} (bench.corpus --size {n_max + len(queries)} makes enough)"
        )
    return queries, pool, draw_distinct(n_max, cfg.seed)


def _search_phase(cfg: SimpleNamespace, st: SimpleNamespace, drawn: tuple | None, chunk: int, bw: dict):
    """Corpus-scale search rows (none asked: skipped): a pool encoded by the student (`--search-student`:
    a trained export, whose concat head the two-stage rows need, served by `--search-backend`), queries
    from the real sentences outside it (`drawn`: _search_pool's, made before any work)."""
    if drawn is None:
        return None
    student = st.student
    if cfg.search_student:
        student = exported_student(cfg.search_student, cfg.hidden, cfg.search_backend)
    queries, pool, rows = drawn
    log.info("search: encoding %d pool sentences and %d queries", len(pool), len(queries))
    start = time.perf_counter()
    pool_emb = encode_corpus(student.encode_fn, pool, cfg.batch_size)
    encode_s = time.perf_counter() - start
    query_emb = encode_corpus(student.encode_fn, queries, cfg.batch_size, progress=False)
    ctx = SearchContext(pool_emb, query_emb, rows, cfg.top_k, cfg.timed_queries, cfg.two_stage_queries, chunk,
                        bw["gb_per_s"])  # fmt: skip
    identity = student_identity(cfg.search_student) if cfg.search_student else None  # the export's files
    corpus = None
    if cfg.search_corpus:
        corpus = {"file": cfg.search_corpus, "sha256": sha256_file(cfg.search_corpus), "distinct": True}
    return {
        **time_search(cfg, ctx, student.heads["concat"]),
        "student": student.sources,
        "student_id": identity,
        "backend": cfg.search_backend,
        "corpus": corpus,
        "pool_encode": {"sentences": len(pool), "seconds": encode_s, "sentences_per_s": len(pool) / encode_s},
    }


def run(cfg: SimpleNamespace) -> dict:
    start, meter = time.perf_counter(), CpuMeter()
    torch.set_num_threads(cfg.threads)
    machine = machine_info(cfg.threads)
    sentences, sources = real_sentences(cfg.tasks, cfg.data_dir)
    drawn = _search_pool(cfg, sentences) if cfg.search_ns else None  # a too-small corpus: refused now
    st = _student_phase(cfg, sentences, random.Random(cfg.seed))
    cand_text, scoring, bandwidth = _scoring_phase(cfg, st)
    teacher, teacher_backends, bounds = _teacher_phase(cfg, st, cand_text)
    student, encode = st.student, st.encode
    (speed, peaks), train = _encode_speed_phase(cfg, st.pool, sentences), _train_speed_phase(cfg)
    search = _search_phase(cfg, st, drawn, scoring["chunk_tuning"]["best"], bandwidth)
    wall_s = time.perf_counter() - start
    return {
        "machine": {**machine, "contention": meter.report(wall_s)},
        "config": vars(cfg),
        "data": {"sources": sources, "distinct_sentences": len(sentences)},
        "student": {"heads": student.sources, "embed_dim": student.embed_dim, "trained": bool(cfg.student)},
        "teacher": teacher,
        "teacher_backends": teacher_backends,
        "encode": encode,
        "encode_speed": speed,
        "gemm_peaks": peaks,
        "train_speed": train,
        "search": search,
        "memory_bandwidth": bandwidth,
        "flop_bound": bounds,
        "chunk_tuning": scoring["chunk_tuning"],
        "rows": make_rows(
            cfg.ns, teacher_backends["timings"], scoring, encode, bounds, bandwidth, student.embed_dim
        ),  # fmt: skip
        "wall_s": wall_s,
    }
