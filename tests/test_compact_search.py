"""Compact stores (float16, int8), approximate dot search (IVF, HNSW) and two-stage concat scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dse_lightning.embeddings.ann import FaissIndex, Search
from dse_lightning.embeddings.compact import Candidates
from dse_lightning.embeddings.scorers import ConcatScorer, DotScorer, TwoStage, cosine_index, naive_logits
from dse_lightning.score import main as score_main
from dse_lightning.scoring import EmbeddingStore, open_index
from test_scoring import CANDIDATES, export_tiny, random_head


def clustered(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """Rows around 20 centres, like sentence embeddings (neighbours exist); not a multiple of any chunk."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, d, generator=g) * 3
    return centres[torch.randint(20, (n,), generator=g)] + torch.randn(n, d, generator=g)


@pytest.mark.parametrize(("dtype", "tol"), [("float32", 0.0), ("float16", 1e-2), ("int8", 0.1)])
def test_compact_rows_decode_close_and_save(dtype: str, tol: float, tmp_path: Path) -> None:
    x = clustered(300, 16)
    cands = Candidates.encode(x, dtype)
    assert cands.nbytes == 300 * 16 * {"float32": 4, "float16": 2, "int8": 1}[dtype]
    span = (x.max(0).values - x.min(0).values).max()
    assert (cands.rows() - x).abs().max() <= tol * span + 1e-7
    idx = torch.tensor([5, 0, 299])
    torch.testing.assert_close(cands.take(idx), cands.rows()[idx])
    assert torch.equal(torch.cat([v for _, v in cands.chunks(7)]), cands.rows())
    EmbeddingStore(cands, [str(i) for i in range(300)], "s").save(tmp_path / "store")
    loaded = EmbeddingStore.load(tmp_path / "store", "s").candidates
    assert loaded.dtype == dtype and torch.equal(loaded.rows(), cands.rows())


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_block_by_block_storage_equals_faiss_on_the_whole(dtype: str) -> None:
    """A store joined shard by shard holds what one pass over all rows gives; int8 the codes of faiss's
    own QT_8bit training on the whole matrix (the ranges are the blocks' min / max)."""
    import faiss

    x = clustered(300, 16)
    blocks = Candidates.encode_blocks(lambda: iter(x.split(70)), dtype)
    whole = Candidates.encode(x, dtype)
    assert blocks.dtype == dtype and torch.equal(blocks.data, whole.data)
    if dtype == "int8":
        sq = faiss.ScalarQuantizer(16, faiss.ScalarQuantizer.QT_8bit)
        sq.train(x.numpy())
        assert torch.equal(blocks.trained, torch.from_numpy(faiss.vector_to_array(sq.trained)))
        assert torch.equal(blocks.data, torch.from_numpy(sq.compute_codes(x.numpy())))


def test_a_store_written_before_compact_dtypes_loads_as_float32(tmp_path: Path) -> None:
    """Its meta has no dtype (float32 rows were the only kind); it loads, it is not refused."""
    from dse_lightning.store import MANIFEST, write_manifest

    x = clustered(40, 8)
    EmbeddingStore(Candidates.encode(x), [str(i) for i in range(40)], "s").save(tmp_path / "old")
    manifest = json.loads((tmp_path / "old" / MANIFEST).read_text())
    meta = {k: v for k, v in manifest["meta"].items() if k != "dtype"}
    (tmp_path / "old" / MANIFEST).unlink()
    write_manifest(tmp_path / "old", manifest["kind"], meta)
    loaded = EmbeddingStore.load(tmp_path / "old", "s").candidates
    assert loaded.dtype == "float32" and torch.equal(loaded.rows(), x)


def test_bad_dtype_and_search_are_refused() -> None:
    with pytest.raises(ValueError, match="bfloat16"):
        Candidates.encode(torch.randn(3, 4), "bfloat16")
    with pytest.raises(ValueError, match="'lsh'"):
        Search("lsh")
    with pytest.raises(ValueError, match="nprobe"):
        Search("ivf", nprobe=0)
    with pytest.raises(ValueError, match="two-stage shortlist"):
        random_head("concat", 8).scorer(torch.randn(5, 8), search=Search("ivf"))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_concat_scorer_reads_compact_rows_as_the_head_would(dtype: str) -> None:
    head, x = random_head("concat", 16), clustered(200, 16)
    cands, u = Candidates.encode(x, dtype), torch.randn(16)
    fast = ConcatScorer(head, cands, chunk_size=33)
    naive = naive_logits(head, u, cands.rows())  # the head over the decoded rows
    torch.testing.assert_close(fast.logits(u), naive, atol=1e-5, rtol=1e-4)
    idx = torch.tensor([3, 150, 7])
    torch.testing.assert_close(fast.logits_of(u, idx), naive[idx], atol=1e-5, rtol=1e-4)


def exact_top(x: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    return (F.normalize(x, dim=-1) @ F.normalize(q, dim=-1)).topk(k).indices


@pytest.mark.parametrize(
    ("search", "dtype", "recall"),
    [(Search(), "float32", 1.0), (Search("ivf", nlist=8, nprobe=8), "float32", 1.0),
     (Search("ivf", nlist=16, nprobe=4), "float32", 0.8), (Search("hnsw", hnsw_m=8), "float32", 0.9),
     (Search(), "float16", 0.9), (Search(), "int8", 0.8)],
)  # fmt: skip
def test_dot_search_recall(search: Search, dtype: str, recall: float) -> None:
    head, x = random_head("dot", 32), clustered(2000, 32)
    head.scale.data.fill_(2.0)
    scorer = DotScorer(head, Candidates.encode(x, dtype), search)
    queries = clustered(20, 32, seed=1)
    found = [set(scorer.topk(q, 10)[1].tolist()) & set(exact_top(x, q, 10).tolist()) for q in queries]
    assert sum(map(len, found)) / 200 >= recall
    logits, idx = scorer.topk(queries[0], 5)
    if dtype == "float32":  # the head's own score of what was found
        torch.testing.assert_close(logits, head(queries[0].expand(5, -1), x[idx]), atol=1e-5, rtol=1e-4)


def test_negative_scale_searches_for_the_smallest_cosine() -> None:
    head, x = random_head("dot", 8), clustered(100, 8)
    head.scale.data.fill_(-3.0)
    q = torch.randn(8)
    logits, idx = DotScorer(head, x, Search("ivf", nlist=4, nprobe=4)).topk(q, 3)
    assert idx.tolist() == (-(F.normalize(x, dim=-1) @ F.normalize(q, dim=-1))).topk(3).indices.tolist()


def test_two_stage_with_a_full_shortlist_is_the_full_pass() -> None:
    head, x, u = random_head("concat", 16), clustered(300, 16), torch.randn(16)
    full = ConcatScorer(head, x)
    two = TwoStage(full, shortlist=300)
    assert two.topk(u, 10)[1].tolist() == full.topk(u, 10)[1].tolist()
    logits, idx = TwoStage(full, shortlist=20).topk(u, 5)  # M < N: the best of the 20 nearest by cosine
    near = exact_top(x, u, 20)
    assert set(idx.tolist()) <= set(near.tolist())
    torch.testing.assert_close(logits, full.logits(u)[idx])
    with pytest.raises(ValueError, match="shortlist must be >= 1"):
        TwoStage(full, shortlist=0)


def test_faiss_index_drops_missing_hits() -> None:
    index = FaissIndex.build([torch.randn(50, 8)], 8, 50, "float32", Search("ivf", nlist=10, nprobe=1),
                             torch.randn(400, 8))  # fmt: skip
    sims, idx = index.search(torch.randn(8), 40)  # one list of ~5 rows cannot give 40
    assert len(idx) == len(sims) < 40 and (idx >= 0).all()


def test_an_index_saved_with_the_store_is_loaded_not_rebuilt(tmp_path: Path, monkeypatch) -> None:
    x = clustered(500, 16)
    store = EmbeddingStore(Candidates.encode(x, "float16"), [str(i) for i in range(500)], "s")
    built = cosine_index(store.candidates, Search("ivf", nlist=8, nprobe=2))
    store.save(tmp_path / "store", indexes=[built])
    loaded = EmbeddingStore.load(tmp_path / "store", "s").candidates
    assert set(loaded.indexes) == {"IVF8,SQfp16"} and loaded.indexes["IVF8,SQfp16"].is_file()

    def rebuilt(*args, **kwargs):
        raise RuntimeError("the saved index was rebuilt")

    monkeypatch.setattr(FaissIndex, "build", rebuilt)
    head = random_head("dot", 16)
    scorer = DotScorer(head, loaded, Search("ivf", nlist=8, nprobe=2))  # query-time nprobe applied
    q = F.normalize(torch.randn(16), dim=-1)
    assert scorer.topk(q, 5)[1].tolist() == built.search(q, 5)[1].tolist()
    with pytest.raises(RuntimeError, match="rebuilt"):  # another factory string is not in the store
        DotScorer(head, loaded, Search("ivf", nlist=4))


@pytest.mark.parametrize(
    ("head", "extra"),
    [("dot", ["--dtype", "int8", "--search", "ivf", "--nlist", "2", "--nprobe", "2"]),
     ("concat", ["--dtype", "float16", "--shortlist", "6"])],
)  # fmt: skip
def test_score_cli_compact_and_approximate(head: str, extra: list[str], tokenizer_path: str, tmp_path: Path):
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0, head=head)
    (tmp_path / "cands.txt").write_text("\n".join(CANDIDATES) + "\n")
    args = ["--student", str(export), "--store", str(tmp_path / "store"), "--candidates",
            str(tmp_path / "cands.txt"), "--query", "A man plays the guitar.", "--top-k", "3"]  # fmt: skip
    score_main([*args, *extra, "--output", str(tmp_path / "approx.jsonl")])
    meta = json.loads((tmp_path / "store" / "manifest.json").read_text())["meta"]
    assert meta["dtype"] == extra[1] and ("indexes" in meta) == (
        head == "dot"
    )  # the IVF saved with the store
    exact = open_index(export, tmp_path / "exact", CANDIDATES, progress=False).search(
        ["A man plays the guitar."], 3
    )
    approx = json.loads((tmp_path / "approx.jsonl").read_text())["hits"]
    # 6 candidates: every list probed, the whole shortlist re-scored; only the compact rows' rounding differs
    assert [h["index"] for h in approx] == [h.index for h in exact[0]]
    assert [h["score"] for h in approx] == pytest.approx([h.score for h in exact[0]], abs=0.05)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_exact_search_split_in_parts_equals_one_part(dtype: str) -> None:
    x, cands = clustered(1001, 16), None
    cands = Candidates.encode(x, dtype)
    one = cosine_index(cands, Search())
    three = cosine_index(cands, Search(threads=3))
    assert len(three.parts) == 3 and len(three) == 1001 and [lo for lo, _ in three.parts] == [0, 333, 667]
    for q in clustered(5, 16, seed=2):
        q = F.normalize(q, dim=-1)
        assert three.search(q, 10)[1].tolist() == one.search(q, 10)[1].tolist()
    with pytest.raises(ValueError, match="exact scans only"):
        Search("ivf", threads=2)


def test_each_part_is_scanned_by_one_openmp_thread() -> None:
    """OpenMP's thread count is per thread: a pool thread left at the default ran its part's scan with a
    second OpenMP thread each, and the split scan took as long as one (measured at 1M)."""
    import faiss

    seen = []

    class Part:
        def __init__(self, index) -> None:
            self.index = index

        def search(self, x, k):
            seen.append(faiss.omp_get_max_threads())
            return self.index.search(x, k)

    split = cosine_index(Candidates.encode(clustered(400, 16)), Search(threads=2))
    split.parts = [(lo, Part(part)) for lo, part in split.parts]
    faiss.omp_set_num_threads(2)
    split.search(F.normalize(clustered(1, 16, seed=4)[0], dim=-1), 10)
    assert seen == [1, 1] and faiss.omp_get_max_threads() == 2  # the caller's setting is left as it was


def test_batched_search_finds_what_single_queries_find() -> None:
    cands = Candidates.encode(clustered(700, 16), "float16")
    queries = F.normalize(clustered(6, 16, seed=3), dim=-1)
    for search in (Search(), Search(threads=2), Search("ivf", nlist=10, nprobe=3)):
        index = cosine_index(cands, search)
        batched = index.search_many(queries, 10)
        assert [row[row >= 0].tolist() for row in batched] == [
            index.search(q, 10)[1].tolist() for q in queries
        ]


def test_more_lists_than_candidates_or_a_store_that_is_a_file_are_refused_before_encoding(
    tokenizer_path: str, tmp_path: Path, monkeypatch
) -> None:
    from dse_lightning.scoring import build

    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0, head="dot")
    (tmp_path / "cands.txt").write_text("\n".join(CANDIDATES) + "\n")

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded before the options were checked")

    monkeypatch.setattr(build, "EncodeModule", no_encoding)
    args = ["--student", str(export), "--candidates", str(tmp_path / "cands.txt"), "--query", "Stocks fell."]
    n = len(set(CANDIDATES))
    with pytest.raises(
        ValueError, match=rf"nlist=1000 \(score --nlist.*more IVF lists than the {n} distinct"
    ):
        score_main([*args, "--store", str(tmp_path / "store"), "--search", "ivf", "--nlist", "1000"])
    (tmp_path / "a_file").write_text("not a store")
    with pytest.raises(NotADirectoryError, match=r"store .*a_file: a file, not a folder"):
        score_main([*args, "--store", str(tmp_path / "a_file")])
    with pytest.raises(ValueError, match=r"nlist=1000 .*more IVF lists than the 300"):  # a loaded store too
        FaissIndex(16, 300, "float32", Search("ivf", nlist=1000))
