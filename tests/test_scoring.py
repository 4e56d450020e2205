"""Scalable scoring: decomposed concat head == naive head, top-k == brute force, stores and their identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from conftest import TINY_BERT
from dse_lightning import load_student
from dse_lightning.config import load_task
from dse_lightning.export import export_student
from dse_lightning.models.components import BiLSTMEncoder, ConcatHead, DotHead, SiameseStudent
from dse_lightning.score import main as score_main
from dse_lightning.scoring import (
    ConcatScorer,
    DotScorer,
    EmbeddingStore,
    StoreMismatchError,
    encode_corpus,
    naive_logits,
    open_index,
    student_identity,
)
from dse_lightning.scoring.index import rank_key
from dse_lightning.utils.io import CorruptArtifactError

CANDIDATES = [
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "The cat sleeps on the mat.",
    "Shares of the company rose 5 percent on Monday.",
    "A woman is slicing an onion.",
    "The stock market fell sharply.",
    "A man is playing a guitar.",  # a duplicate: stored once
]


def random_head(kind: str, d: int, outputs: int = 1, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    head = ConcatHead(d, outputs, hidden_dim=24) if kind == "concat" else DotHead(d, outputs)
    if kind == "dot":
        torch.nn.init.normal_(head.bias)
    return head.eval()


@pytest.mark.parametrize(("outputs", "chunk"), [(1, 7), (3, 64), (1, 1000)])
def test_decomposed_concat_equals_naive_head(outputs: int, chunk: int) -> None:
    head = random_head("concat", d=16, outputs=outputs)
    torch.manual_seed(1)
    cands, u = torch.randn(50, 16), torch.randn(16)  # 50 is not a multiple of the chunk
    fast = ConcatScorer(head, cands, chunk_size=chunk).logits(u)  # (N, C)
    with torch.no_grad():
        naive = head(u.expand(50, -1), cands)  # the head itself, pair by pair
    assert fast.shape == (50, outputs)
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(naive_logits(head, u, cands, chunk_size=13), naive)


@pytest.mark.parametrize(
    ("kind", "normalize", "scale"), [("concat", None, None), ("dot", True, 5.0), ("dot", False, -2.0)]
)
def test_topk_equals_brute_force(kind: str, normalize: bool | None, scale: float | None) -> None:
    head = random_head(kind, d=16)
    if kind == "dot":  # a negative learned scale must rank by the smallest inner product
        head.normalize = normalize
        head.scale.data.fill_(scale)
    torch.manual_seed(2)
    cands, u = torch.randn(200, 16), torch.randn(16)
    scorer = head.scorer(cands, chunk_size=32)
    assert isinstance(scorer, ConcatScorer if kind == "concat" else DotScorer)
    logits, idx = scorer.topk(u, k=10)
    brute = naive_logits(head, u, cands)[:, 0]  # (N,)
    expected = brute.topk(10)
    assert idx.tolist() == expected.indices.tolist()
    torch.testing.assert_close(logits[:, 0], expected.values, atol=1e-5, rtol=1e-4)
    assert scorer.topk(u, k=500)[1].shape == (200,)  # k past N: every candidate, ranked


def test_multiclass_ranks_by_the_given_label() -> None:
    spec = {"labels": ["entailment", "neutral", "contradiction"], "head": {"num_outputs": 3}}
    with pytest.raises(ValueError, match="pass --label"):
        rank_key(spec, None)
    key, col = rank_key(spec, "neutral")
    logits = torch.tensor([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    assert col == 1 and key(logits).argmax().item() == 0


def test_encode_corpus_encodes_each_distinct_sentence_once() -> None:
    seen: list[str] = []

    def encode(batch: list[str]) -> torch.Tensor:
        seen.extend(batch)
        return torch.tensor([[float(len(s)), float(s.count("a"))] for s in batch])

    emb = encode_corpus(encode, CANDIDATES, batch_size=2, progress=False)
    assert sorted(seen) == sorted(set(CANDIDATES))  # the duplicate went through the encoder once
    assert [len(s) for s in seen] == sorted(len(s) for s in seen)  # batches in length order
    assert emb[:, 0].tolist() == [float(len(s)) for s in CANDIDATES]  # rows back in input order


def export_tiny(path: Path, tokenizer_path: str, seed: int, head: str = "concat") -> Path:
    torch.manual_seed(seed)
    encoder = BiLSTMEncoder.from_backbone(TINY_BERT, hidden_dim=8)
    pair_head = ConcatHead(encoder.embed_dim, 1) if head == "concat" else DotHead(encoder.embed_dim)
    student = SiameseStudent(encoder, pair_head).eval()
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    return export_student(path, student, tok, load_task("mrpc"), max_length=32)


def test_store_round_trip(tmp_path: Path) -> None:
    store = EmbeddingStore(torch.randn(3, 4), ["a", "b", "c"], student_id="abc")
    store.save(tmp_path / "store")
    loaded = EmbeddingStore.load(tmp_path / "store", student_id="abc")
    assert torch.equal(loaded.candidates.data, store.candidates.data) and loaded.sentences == ["a", "b", "c"]
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["meta"]["n"] == 3
    with pytest.raises(StoreMismatchError, match="not those of"):
        loaded.check_sentences(["a", "b"], "x.txt")
    weights = tmp_path / "store" / "embeddings.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit in the last embedding
    weights.write_bytes(bytes(raw))
    with pytest.raises(
        CorruptArtifactError, match=r"embeddings\.safetensors: sha256 .* corrupted; rebuild it"
    ):
        EmbeddingStore.load(tmp_path / "store", student_id="abc")


@pytest.mark.parametrize("head", ["concat", "dot"])
def test_index_search_matches_the_students_own_scores(head: str, tokenizer_path: str, tmp_path: Path) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0, head=head)
    index = open_index(export, tmp_path / "store", CANDIDATES, progress=False)
    assert len(index.store.sentences) == 6  # the duplicate stored once
    query = "A man plays the guitar."
    hits = index.search([query], k=3)[0]
    expected = load_student(export).score([query] * 6, index.store.sentences)  # naive: P(positive)
    assert [h.index for h in hits] == expected.topk(3).indices.tolist()
    torch.testing.assert_close(
        torch.tensor([h.score for h in hits]), expected.topk(3).values, atol=1e-5, rtol=1e-4
    )
    again = open_index(export, tmp_path / "store", progress=False)  # loaded, not re-encoded
    torch.testing.assert_close(again.store.candidates.data, index.store.candidates.data)


def test_store_from_another_student_is_refused(tokenizer_path: str, tmp_path: Path) -> None:
    first = export_tiny(tmp_path / "first", tokenizer_path, seed=0)
    other = export_tiny(tmp_path / "other", tokenizer_path, seed=1)
    assert student_identity(first) != student_identity(other)
    open_index(first, tmp_path / "store", CANDIDATES, progress=False)
    with pytest.raises(StoreMismatchError, match=student_identity(first)[:16]):
        open_index(other, tmp_path / "store", CANDIDATES, progress=False)
    rebuilt = open_index(other, tmp_path / "store", CANDIDATES, rebuild=True, progress=False)
    assert rebuilt.store.student_id == student_identity(other)


def test_score_cli(tokenizer_path: str, tmp_path: Path) -> None:
    export = export_tiny(tmp_path / "export", tokenizer_path, seed=0)
    (tmp_path / "cands.txt").write_text("\n".join(CANDIDATES) + "\n\n")
    (tmp_path / "queries.txt").write_text("A man plays the guitar.\nStocks fell.\n")
    args = ["--student", str(export), "--store", str(tmp_path / "store"), "--top-k", "2"]
    score_main(
        [
            *args,
            "--candidates",
            str(tmp_path / "cands.txt"),
            "--queries",
            str(tmp_path / "queries.txt"),
            "--output",
            str(tmp_path / "out.jsonl"),
        ]
    )
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["query"] for r in rows] == ["A man plays the guitar.", "Stocks fell."]
    assert all(len(r["hits"]) == 2 and 0.0 <= r["hits"][0]["score"] <= 1.0 for r in rows)
    assert rows[0]["hits"][0]["score"] >= rows[0]["hits"][1]["score"]
    with pytest.raises(FileNotFoundError, match="--queries"):
        score_main([*args, "--queries", str(tmp_path / "missing.txt")])


def test_empty_queries_are_refused_before_any_work(tmp_path: Path) -> None:
    args = ["--student", str(tmp_path / "none"), "--store", str(tmp_path / "store")]
    with pytest.raises(ValueError, match=r"--query: query 2 of 2 is empty or whitespace only"):
        score_main([*args, "--query", "A man plays the guitar.", "--query", "   "])
    # from a file: its line, since a skipped line would shift every answer after it
    (tmp_path / "queries.txt").write_text("A man plays the guitar.\n \t\nStocks fell.\n")
    with pytest.raises(ValueError, match=r"--queries .*queries\.txt, line 2: empty or whitespace-only line"):
        score_main([*args, "--queries", str(tmp_path / "queries.txt")])
    assert not (tmp_path / "store").exists()
