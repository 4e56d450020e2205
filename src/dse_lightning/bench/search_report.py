"""The corpus-scale search section of results.md, and its plot (time per query and recall against N)."""

from __future__ import annotations

from pathlib import Path

from ..utils.io import atomic_path

PLOT = "search_vs_n.png"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _rows(search: dict, k: int) -> list[str]:
    exact32 = {
        r["n"]: r["score_s"] for r in search["rows"] if r.get("factory") == "Flat" and r["threads"] == 1
    }
    lines = [
        "| N | dtype | index | threads | s / query | x faster than exact fp32 (1 thread) "
        f"| recall@{k} | same top-{k} | store MiB | index MiB (RSS growth) | build s | peak RSS MiB "
        "| x memory floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in search["rows"]:
        if "not_run" in r:
            lines.append(f"| {r['n']:,} | - | {r['mode']} | - | not run: {r['not_run']} |" + " |" * 8)
            continue
        base = exact32.get(r["n"])
        cells = [
            f"{r['n']:,}", r["dtype"], f"`{r['factory']}`", str(r["threads"]), f"{r['score_s']:.5f}",
            _fmt(base and base / r["score_s"], ".1f"), f"{r[f'recall@{k}']:.4f}", f"{r[f'same_top{k}']:.3f}",
            f"{r['store_mib']:,.0f}", f"{r['index_mib']:,.0f}", f"{r['index_build_s']:.1f}",
            f"{r['peak_rss_mib']:,.0f}", _fmt(r.get("x_memory_floor"), ".2f"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _two_stage(search: dict, k: int) -> list[str]:
    if not search["two_stage"]:
        return []
    lines = [
        "",
        f"Two-stage concat: the M rows nearest the query by cosine (by the shortlist index: exact, IVF or "
        f"HNSW over the same embeddings), re-scored by the concat head, against the concat head over all N "
        f"({search['two_stage'][0]['queries']} queries).",
        "",
        f"| N | M | shortlist index | s / query | full pass s / query | x faster | recall@{k} "
        f"| same top-{k} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in search["two_stage"]:
        lines.append(
            f"| {r['n']:,} | {r['shortlist']:,} | `{r['factory']}` | {r['score_s']:.5f} "
            f"| {r['full_score_s']:.4f} "
            f"| {r['x_faster']:.1f} | {r[f'recall@{k}']:.4f} | {r[f'same_top{k}']:.3f} |"
        )
    return lines


def search_lines(results: dict) -> list[str]:
    search = results.get("search")
    if not search:
        return []
    k, c = results["config"]["top_k"], results["config"]
    rows = f"Rows drawn with replacement from {search['pool']:,} real sentences' embeddings"
    if search.get("corpus"):
        enc = search["pool_encode"]
        rows = (
            f"Rows: {search['pool']:,} distinct sentences of a made corpus (bench/corpus.py, sha256 "
            f"{search['corpus']['sha256'][:12]}), each row a different one, encoded by the "
            f"`{search['backend']}` backend at {enc['sentences_per_s']:,.0f} sentences/s"
        )
    return [
        "## Corpus-scale search (dot head; two-stage concat)",
        "",
        f"Student: {search['student']['concat']}. {rows}; "
        f"{search['queries']} query sentences outside them. One query at a time, one faiss thread "
        "(threads > 1: the rows cut in that many parts scanned at once), median of "
        f"{c['timed_queries']} after a warm-up. recall@{k} is against exact float32 search over the same "
        "rows and tie-aware (a sentence's copies are interchangeable: a row counts when its exact score "
        f"reaches the exact {k}th best); same top-{k}: the share of queries whose {k} rows all count. "
        "Memory floor: the bytes one query must read (all codes; IVF: the probed share and the centroids) "
        "/ the bandwidth.",
        "",
        *_rows(search, k),
        *_two_stage(search, k),
        "",
        f"![search time and recall vs N]({PLOT})",
        "",
    ]


def write_search_plot(results: dict, path: Path) -> None:
    search = results.get("search")
    if not search:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = results["config"]["top_k"]
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4.5))
    measured = [r for r in search["rows"] if "not_run" not in r]
    for series in dict.fromkeys((r["mode"], r["dtype"], r["threads"]) for r in measured):
        rows = [r for r in measured if (r["mode"], r["dtype"], r["threads"]) == series]
        label = f"{series[0]} {series[1]}" + (f" ×{series[2]} threads" if series[2] > 1 else "")
        ax_t.plot([r["n"] for r in rows], [r["score_s"] for r in rows], "o-", label=label)
        ax_r.plot([r["n"] for r in rows], [r[f"recall@{k}"] for r in rows], "o-", label=label)
    floor = [r for r in search["rows"] if r.get("factory") == "Flat" and r["threads"] == 1]
    ax_t.plot(
        [r["n"] for r in floor], [r["memory_floor_s"] for r in floor], "k:", label="memory floor (fp32)"
    )
    ax_t.set(xscale="log", yscale="log", xlabel="N candidates", ylabel="seconds per query", title="time")
    ax_r.set(xscale="log", xlabel="N candidates", ylabel=f"recall@{k} vs exact fp32", title="recall")
    for ax in (ax_t, ax_r):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
