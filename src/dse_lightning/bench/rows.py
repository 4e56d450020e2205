"""results.json rows: one per (N, head), the measured times and how they compare to the bounds."""

from __future__ import annotations


def _common(n: int, teacher: dict, encode: dict, score_s: float) -> dict:
    t = teacher["by_n"][n]
    return {
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
    ns: list[int], teacher: dict, scoring: dict, encode: dict, bounds: dict, bandwidth: dict, dim: int
) -> list[dict]:
    rows = []
    for n in sorted(ns):
        for head in ("concat", "dot"):
            timing = scoring["by_n_head"][(n, head)]
            row = {"n": n, "head": head, **_common(n, teacher, encode, timing["score_s"])}
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
