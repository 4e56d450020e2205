"""Wall-clock measurements: the cross-encoder, the student's encoder, and the machine's memory bandwidth."""

from __future__ import annotations

import logging
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..embeddings.encode import EncodeFn, encode_corpus
from ..export.cross_encoder import PredictFn

log = logging.getLogger(__name__)


def median_seconds(
    fn: Callable[[object], object], inputs: list, warmup: int = 1
) -> tuple[float, list[float]]:
    """Median wall time of fn(x) over `inputs`, after `warmup` untimed calls on the first input."""
    for _ in range(warmup):
        fn(inputs[0])
    times = []
    for x in inputs:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


@torch.inference_mode()
def teacher_pass(predict: PredictFn, query: str, candidates: list[str], batch_size: int) -> float:
    """Seconds to cross-encode `query` with every candidate through `predict` (a backend's: tokenisation
    included, since a cross-encoder must tokenise every pair). Candidates go in length order, as a serving
    system would batch them, so padding wastes little."""
    start = time.perf_counter()
    ordered = sorted(candidates, key=len)
    for i in range(0, len(ordered), batch_size):
        predict([(query, c) for c in ordered[i : i + batch_size]])
    return time.perf_counter() - start


def pair_tokens(tokenizer, queries: list[str], candidates: list[str], max_length: int) -> float:
    """Mean WordPieces of the (query, candidate) pairs, truncated as the cross-encoder reads them."""
    lengths = [
        len(ids)
        for q in queries
        for ids in tokenizer([q] * len(candidates), candidates, truncation=True, max_length=max_length)[
            "input_ids"
        ]
    ]
    return sum(lengths) / len(lengths)


def time_teacher(predict: PredictFn, queries: list[str], candidates: list[str], ns: list[int], cfg) -> dict:
    """Per N: the median time of 1 query x N candidates, measured while within `cfg.teacher_budget`
    seconds, else extrapolated linearly from the largest N measured (marked `extrapolated`)."""
    out, spent, pairs, per_pair = {}, 0.0, 0, None
    for n in sorted(ns):
        if per_pair is not None and spent + per_pair * n > cfg.teacher_budget:
            out[n] = {"seconds": per_pair * n, "extrapolated": True, "queries": 0}
            continue
        times = []
        for query in queries[: cfg.teacher_queries]:
            if times and spent + statistics.median(times) > cfg.teacher_budget:
                break
            times.append(teacher_pass(predict, query, candidates[:n], cfg.batch_size))
            spent, pairs = spent + times[-1], pairs + n
            log.info("cross-encoder: N=%d query %d: %.2f s", n, len(times), times[-1])
        out[n] = {"seconds": statistics.median(times), "extrapolated": False, "queries": len(times)}
        per_pair = out[n]["seconds"] / n
    return {"by_n": out, "measured_s": spent, "pairs_measured": pairs}


def max_rss_mib() -> float:
    """The process's peak resident set so far (getrusage ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in MiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024


def reset_peak_rss() -> None:
    """Start a new peak: Linux resets VmHWM to the current RSS when "5" is written to clear_refs, so a
    later `peak_rss_mib()` covers only what ran since."""
    Path("/proc/self/clear_refs").write_text("5")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """The peak resident set since `reset_peak_rss()`."""
    return _status_mib("VmHWM")


def time_encode(encode_fn: EncodeFn, sentences: list[str], batch_size: int) -> tuple[torch.Tensor, dict]:
    """Encode distinct real sentences once (the store-building pass): embeddings and throughput."""
    rss_before = max_rss_mib()
    start = time.perf_counter()
    embeddings = encode_corpus(encode_fn, sentences, batch_size=batch_size, progress=True)
    seconds = time.perf_counter() - start
    info = {
        "sentences": len(sentences),
        "seconds": seconds,
        "sentences_per_s": len(sentences) / seconds,
        "peak_rss_mib": max_rss_mib(),
        "peak_rss_before_mib": rss_before,
        "peak_rss_method": "getrusage ru_maxrss of the whole process, read after encoding",
    }
    return embeddings, info


def memory_bandwidth(gib: float = 1.0, repeats: int = 5) -> dict:
    """Copy `gib` GiB into another buffer, best of `repeats`: GB/s counting the read and the write."""
    n = int(gib * (1 << 30)) // 4
    src, dst = torch.ones(n), torch.zeros(n)  # both written once, so no page faults are timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"bytes": 2 * n * 4, "best_s": best, "gb_per_s": 2 * n * 4 / best / 1e9, "method": "torch copy_"}
