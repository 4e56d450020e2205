"""results.json rows: one per (N, head), the measured times and how they compare to the bounds.

`teachers` is {backend: the cross-encoder's timings}: `teacher_s` and `speedup` are against torch fp32 (the
FLOP bound's reference), `speedup_vs_fastest` against the fastest backend at that N.
"""

from __future__ import annotations

from ..export.backends import DEFAULT


def _fastest(n: int, teachers: dict) -> dict:
    """The cross-encoder backend that scores 1 query x N candidates fastest, and its speed-up column."""
    name = min(teachers, key=lambda b: teachers[b]["by_n"][n]["seconds"])
    t = teachers[name]["by_n"][n]
    return {
        "fastest_teacher": name,
        "fastest_teacher_s": t["seconds"],
        "fastest_extrapolated": t["extrapolated"],
    }


def _common(n: int, teachers: dict, encode: dict, score_s: float) -> dict:
    t, fastest = teachers[DEFAULT]["by_n"][n], _fastest(n, teachers)
    return {
        **fastest,
        "speedup_vs_fastest": fastest["fastest_teacher_s"] / score_s,
        "teacher_s": t["seconds"],
        "teacher_pairs_per_s": n / t["seconds"],
        "extrapolated": t["extrapolated"],
        "teacher_queries": t["queries"],
        # The store-building pass: N / the measured throughput over `encode.sentences` real sentences.
        "student_encode_s": n / encode["sentences_per_s"],
        "encode_extrapolated": n > encode["sentences"],
        "student_score_s": score_s,
        "student_pairs_per_s": n / score_s,
        "speedup": t["seconds"] / score_s,
        "speedup_with_query_encode": t["seconds"] / (score_s + encode["query_encode_s"]),
    }


def make_rows(
    ns: list[int], teachers: dict, scoring: dict, encode: dict, bounds: dict, bandwidth: dict, dim: int
) -> list[dict]:
    rows = []
    for n in sorted(ns):
        for head in ("concat", "dot"):
            timing = scoring["by_n_head"][(n, head)]
            row = {"n": n, "head": head, **_common(n, teachers, encode, timing["score_s"])}
            bound = bounds[head]["bound"]
            row |= {
                "flop_bound": bound,
                "pct_of_flop_bound": 100 * row["speedup"] / bound,
                "index_build_s": timing["index_build_s"],
                "score_times": timing["score_times"],
            }
            if head == "concat":
                row["naive_score_s"] = timing["naive_score_s"]
                row["naive_over_decomposed"] = timing["naive_score_s"] / timing["score_s"]
                row["naive_over_decomposed_flops"] = bounds["concat"]["naive_over_decomposed_flops"]
            else:
                floor = n * dim * 4 / (bandwidth["gb_per_s"] * 1e9)  # read the (N, d) float32 matrix once
                row["memory_floor_s"] = floor
                row["x_memory_floor"] = timing["score_s"] / floor
            rows.append(row)
    return rows
