"""results.md and the log-log plot of time against N, from a results.json dict."""

from __future__ import annotations

from pathlib import Path

from ..utils.io import atomic_path
from .search_report import search_lines


def _row(results: dict, n: int, head: str) -> dict:
    return next(r for r in results["rows"] if r["n"] == n and r["head"] == head)


def _table(results: dict) -> list[str]:
    lines = [
        "| N | head | teacher s | teacher pairs/s | student encode s | student score s | student pairs/s "
        "| speed-up | FLOP bound | % of bound | naive concat s (× slower) | × memory floor "
        "| fastest cross-encoder s | × faster than it |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        teacher = f"{r['teacher_s']:.1f}{' (extrap.)' if r['extrapolated'] else ''}"
        encode = f"{r['student_encode_s']:.1f}{' (extrap.)' if r['encode_extrapolated'] else ''}"
        naive = (
            f"{r['naive_score_s']:.4f} ({r['naive_over_decomposed']:.2f}×)" if "naive_score_s" in r else "-"
        )
        floor = f"{r['x_memory_floor']:.2f}×" if "x_memory_floor" in r else "-"
        fastest = (
            f"{r['fastest_teacher_s']:.1f} ({r['fastest_teacher']}"
            f"{', extrap.' if r['fastest_extrapolated'] else ''})"
        )
        lines.append(
            f"| {r['n']:,} | {r['head']} | {teacher} | {r['teacher_pairs_per_s']:.0f} | {encode} "
            f"| {r['student_score_s']:.5f} | {r['student_pairs_per_s']:,.0f} | {r['speedup']:,.0f}× "
            f"| {r['flop_bound']:,.0f}× | {r['pct_of_flop_bound']:.0f}% | {naive} | {floor} "
            f"| {fastest} | {r['speedup_vs_fastest']:,.0f}× |"
        )
    return lines


def _metric_cell(metrics: dict | None) -> str:
    if not metrics:
        return "-"
    kept = metrics.get("retention", {})
    return ", ".join(
        f"{k} {v:.4f}" + (f" ({100 * kept[k]:.1f}%)" if k in kept else "")
        for k, v in metrics.items()
        if k != "retention"
    )


def _teacher_backends(results: dict) -> list[str]:
    """The cross-encoder at each backend: seconds for 1 query x N, and its dev metrics (a trained one)."""
    tb = results.get("teacher_backends")
    if not tb:
        return []
    ns = sorted(int(n) for n in results["teacher"]["by_n"])  # int keys, or str ones read from JSON
    torch_s = {int(n): t["seconds"] for n, t in results["teacher"]["by_n"].items()}
    lines = [
        "## Cross-encoder backends",
        "",
        f"The cross-encoder ({results['teacher']['backbone']}) as a CrossEncoder export with every "
        "backend's graphs (int8: ONNX dynamic, OpenVINO static calibrated on "
        f"{tb['calibration'] or '-'}); 1 query x N candidates, as the teacher column above. "
        "Dev metrics (a trained export only) with the share of torch's each backend keeps.",
        "",
        "| backend | "
        + " | ".join(f"N={n:,} s" for n in ns)
        + " | x torch (largest N) | dev metrics (kept) |",
        "|---|" + "---|" * (len(ns) + 2),
    ]
    for backend, timing in tb["timings"].items():
        by_n = {int(n): t for n, t in timing["by_n"].items()}
        cells = [f"{by_n[n]['seconds']:.2f}{' (extrap.)' if by_n[n]['extrapolated'] else ''}" for n in ns]
        x = torch_s[ns[-1]] / by_n[ns[-1]]["seconds"]
        quality = _metric_cell(tb["dev_metrics"].get(backend))
        lines.append(f"| {backend} | " + " | ".join(cells) + f" | {x:.2f} | {quality} |")
    return [*lines, ""]


def bounds_lines(results: dict) -> list[str]:
    fb, bw, enc = results["flop_bound"], results["memory_bandwidth"], results["encode"]
    t, runs = fb["teacher"], ", ".join(f"{x:.1f}" for x in bw["runs_gb_per_s"])
    return [
        f"- Teacher: {t['encoder_params'] / 1e6:.2f}M encoder (non-embedding) parameters, "
        f"{t['mean_pair_tokens']:.1f} WordPieces per pair (measured) -> "
        f"{t['flops_per_pair'] / 1e9:.3f} GFLOP per pair "
        f"({t['attention_flops'] / 1e6:.0f} MFLOP of it attention).",
        f"- concat head: {fb['concat']['flops_per_pair'] / 1e6:.2f} MFLOP per cached pair decomposed "
        f"({fb['concat']['naive_flops_per_pair'] / 1e6:.2f} naive, ratio "
        f"{fb['concat']['naive_over_decomposed_flops']:.2f}) -> FLOP bound {fb['concat']['bound']:,.0f}×.",
        f"- dot head: {fb['dot']['flops_per_pair']:,} FLOP per cached pair -> "
        f"FLOP bound {fb['dot']['bound']:,.0f}×.",
        f"- Memory bandwidth: {bw['gb_per_s']:.1f} GB/s (best {bw['method']}, "
        f"{bw['bytes'] / 2**30:.1f} GiB read+write; runs: {runs} GB/s).",
        f"- Student encode: {enc['sentences_per_s']:.0f} sentences/s over {enc['sentences']:,} distinct real "
        f"sentences ({enc['seconds']:.1f} s); peak RSS {enc['peak_rss_mib']:.0f} MiB "
        f"({enc['peak_rss_method']}); one query: {enc['query_encode_s'] * 1e3:.1f} ms.",
    ]


def _method(results: dict) -> list[str]:
    c, enc, tune = results["config"], results["encode"], results["chunk_tuning"]
    chunks = ", ".join(map(str, tune["seconds_by_chunk"]))
    return [
        "- Teacher (a): the query paired with each candidate, candidates sorted by length, batches of "
        f"{c['batch_size']}, tokenisation included, `inference_mode`, {c['threads']} threads; timed "
        f"for each N while its {c['teacher_budget']:.0f} s budget lasts (median over up to "
        f"{c['teacher_queries']} queries); larger N extrapolated linearly from the largest N measured.",
        f"- Student encode (b): {enc['sentences']:,} distinct real sentences ({', '.join(c['tasks'])}), "
        f"length-sorted batches of {c['batch_size']}; the time for N is N / that throughput, "
        f"extrapolated for N > {enc['sentences']:,}. Peak memory: {enc['peak_rss_method']}.",
        f"- Candidates for (c): N rows drawn with replacement from those {enc['sentences']:,} real "
        "embeddings (the teacher scores the same N sentences). Scoring (c): one query embedding against "
        f"the N cached rows, top-{c['top_k']}, median over {c['queries']} queries after a warm-up; it "
        f"excludes embedding the query ({enc['query_encode_s'] * 1e3:.1f} ms; see "
        "`speedup_with_query_encode` in results.json).",
        f"- concat: the decomposed head in candidate chunks of {tune['best']} (fastest of {chunks} at "
        f"N = {tune['n']:,}); naive = the head itself over (u, v) pairs, 16,384 pairs at a time. "
        "dot: faiss `IndexFlatIP` over the normalised rows.",
        "- Memory floor: N·d·4 bytes / the bandwidth; a small N's matrix sits in cache, so < 1× can happen.",
    ]


def _encode_speed(results: dict) -> list[str]:
    rows = results.get("encode_speed") or []
    if not rows:
        return []
    lines = [
        "## Student encode throughput",
        "",
        "Exports of the paper's student cut to k layers, each sentence encoded once, batches by length.",
        "GFLOP/s: the fp32 model's layer FLOPs over the padded batches (int8 rows too) per second; % of",
        "peak: of the best GEMM rate measured for the row's precision; RSS: the process's resident set",
        "before the row (what earlier rows left) and its peak while the row loaded and encoded.",
        "",
        "| layers | backend | sentences/s | x torch export | x sentence-transformers | x first depth "
        "| GFLOP/s | % of peak | RSS before / peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layers']} | {r['backend']} | {r['sentences_per_s']:.1f} | {r['x_torch']:.2f} | "
            f"{r['x_sentence_transformers']:.2f} | {r['x_first_depth']:.2f} | {r['gflop_per_s']:.0f} | "
            f"{r['pct_of_peak']:.0f}% ({r['peak_precision']}) | "
            f"{r['rss_before_mib']:,.0f} / {r['peak_rss_mib']:,.0f} |"
        )
    peaks = results["gemm_peaks"]
    libs = {
        p: ", ".join(f"{lib} {v:.0f}" for lib, v in peaks[p].items() if lib != "best")
        for p in ("fp32", "int8")
    }
    best = ", ".join(f"{p} {peaks[p]['best']:.0f} ({libs[p]})" for p in libs)
    shape = " x ".join(str(v) for v in peaks["shape"])
    return [*lines, "", f"GEMM peaks (GFLOP/s, int8 GOP/s; a {shape} GEMM, the bench's threads): {best}.", ""]


def _train_speed(results: dict) -> list[str]:
    rows = results.get("train_speed") or []
    if not rows:
        return []
    lines = [
        f"## Training throughput ({rows[0]['task']} train pairs, {rows[0]['steps']} steps a row)",
        "",
        "| model | batching | pairs/s | tokens computed / real | x fixed padding | token bound | % of it |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bound = ["-"] * 3
        if "x_fixed" in r:  # the dynamic row of each model, against its fixed twin
            bound = [f"{r['x_fixed']:.2f}x", f"{r['token_bound_x']:.2f}x", f"{r['pct_of_token_bound']:.0f}%"]
        cells = [
            r["model"],
            r["batching"],
            f"{r['pairs_per_s']:.1f}",
            f"{r['tokens_computed'] / r['tokens_real']:.2f}",
        ]
        lines.append("| " + " | ".join([*cells, *bound]) + " |")
    return [*lines, ""]


def write_markdown(results: dict, path: Path, plot_name: str) -> None:
    m = results["machine"]
    lines = [
        "# Scoring speed: cross-encoder vs DSE student with cached candidates",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
        f"{m['memory_gib']} GiB; torch {m['torch']}, faiss {m['faiss']}. "
        f"Run at nice {m['nice']}; other processes took {m['contention']['mean_cores_taken_by_others']:.2f} "
        "cores on average during the run (hypervisor steal included). "
        f"Bench wall time {results['wall_s']:.0f} s.",
        f"Student: {results['student']['heads']['concat']} / {results['student']['heads']['dot']}; "
        f"d = {results['student']['embed_dim']}.",
        "",
        *_table(results),
        "",
        *_teacher_backends(results),
        *_encode_speed(results),
        *_train_speed(results),
        *search_lines(results),
        "## Bounds",
        "",
        *bounds_lines(results),
        "",
        "## Method",
        "",
        *_method(results),
        "",
        f"![time vs N]({plot_name})",
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))


def _series(results: dict, head: str, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in results["rows"] if r["head"] == head]
    return [r["n"] for r in rows], [r[key] for r in rows]


def write_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    rows = [r for r in results["rows"] if r["head"] == "concat"]
    measured = [r for r in rows if not r["extrapolated"]]
    ax.plot([r["n"] for r in rows], [r["teacher_s"] for r in rows], "k--", label="teacher (extrapolated)")
    ax.plot([r["n"] for r in measured], [r["teacher_s"] for r in measured], "ko-", label="teacher (measured)")
    ax.plot(*_series(results, "concat", "student_encode_s"), "s:", label="student encode N (once)")
    ax.plot(*_series(results, "concat", "naive_score_s"), "v-", label="naive concat head / query")
    ax.plot(*_series(results, "concat", "student_score_s"), "o-", label="decomposed concat head / query")
    ax.plot(*_series(results, "dot", "student_score_s"), "^-", label="dot head (faiss) / query")
    ax.plot(*_series(results, "dot", "memory_floor_s"), "c:", label="memory floor (read N×d)")
    ax.set(
        xscale="log", yscale="log", xlabel="N candidates", ylabel="seconds", title="1 query × N candidates"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
