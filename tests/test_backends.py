"""A serving backend is one `Backend` registered in export/backends. A toy one defined here (the torch
encoder cast to bfloat16) is written into an export, served by `load_student`, offered by the CLIs, kept
apart by store identity, timed by the bench and drawn by the frontier, with no other file changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from dse_lightning import load_student
from dse_lightning.bench import frontier
from dse_lightning.bench.encode_speed import REFERENCE, encode_speed
from dse_lightning.export import export_student
from dse_lightning.export.backends import BACKENDS, DEFAULT, Backend, Writing, register
from dse_lightning.export.evaluate import main as evaluate_main
from dse_lightning.export.onnx import add_onnx
from dse_lightning.score import main as score_main
from dse_lightning.scoring.store import student_identity
from test_distill import MRPC, tiny_student

A = ["A man is playing a guitar.", "Shares of the company rose 5 percent on Monday, analysts said."]
B = ["Someone plays guitar.", "The cat sleeps."]


class TorchBF16(Backend):
    """The export's sentence-transformers model in bfloat16: its file names the dtype it is cast to."""

    name = "torch-bf16"
    label = "torch bf16 (a test's toy)"
    marker = "x"
    file = "bf16/dtype.json"

    def write(self, writing: Writing) -> None:
        path = writing.folder / self.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"dtype": "bfloat16"}))

    def load(self, folder: Path, spec: dict, device: str):
        from sentence_transformers import SentenceTransformer

        dtype = getattr(torch, json.loads((folder / self.file).read_text())["dtype"])
        model = SentenceTransformer(str(folder), device=device, trust_remote_code=True).to(dtype)
        return lambda batch: model.encode(
            batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False
        ).float()


@pytest.fixture
def toy():
    """The toy registered for one test; the registry as it was (and in its order) afterwards."""
    saved = dict(BACKENDS)
    yield register(TorchBF16())
    BACKENDS.clear()
    BACKENDS.update(saved)


def test_a_registered_backend_is_written_served_and_offered(
    toy: Backend, tmp_path: Path, tokenizer_path: str, mrpc_dir: Path, capsys
) -> None:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    export = export_student(tmp_path / "export", tiny_student("dse").eval(), tok, MRPC, 32)
    torch_id = student_identity(export)
    with pytest.raises(FileNotFoundError, match="backend='torch-bf16' but the export has no such"):
        load_student(export, toy.name)
    meta = add_onnx(export, backends=[toy.name])  # the export CLI's writer, this backend only
    assert meta["onnx"] == {toy.name: toy.file} and (export / toy.file).is_file()
    ref, served = load_student(export), load_student(export, toy.name)
    cos = torch.nn.functional.cosine_similarity(served.encode(A + B), ref.encode(A + B))
    assert cos.min() > 0.999 and not torch.equal(served.encode(A), ref.encode(A)), cos  # close, not equal
    torch.testing.assert_close(served.score(A, B), ref.score(A, B), atol=2e-2, rtol=0)
    # its own store identity; the torch stores stay valid after its files were added
    assert student_identity(export) == torch_id != student_identity(export, toy.name)
    with pytest.raises(ValueError, match=r"backend='int4': expected one of .*'torch-bf16'"):
        load_student(export, "int4")
    # the CLIs offer it: score builds a store with it (Lightning's predict loop), evaluate serves dev with it
    cands = tmp_path / "cands.txt"
    cands.write_text("\n".join(A + B) + "\n")
    out = tmp_path / "hits.jsonl"
    score_main(["--student", str(export), "--store", str(tmp_path / "store"), "--candidates", str(cands),
                "--query", A[0], "--top-k", "2", "--backend", toy.name, "--output", str(out)])  # fmt: skip
    assert len(json.loads(out.read_text())["hits"]) == 2
    evaluate_main([str(export), "--task", "mrpc", "--backend", toy.name, "--data-dir", str(mrpc_dir)])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["backend"] == toy.name and set(printed) >= {"acc", "f1"}


def test_the_bench_times_and_the_frontier_draws_a_registered_backend(
    toy: Backend, tiny_backbone: Path, tmp_path: Path, monkeypatch
) -> None:
    for name in [n for n in BACKENDS if n not in (DEFAULT, toy.name)]:  # the graphs are test_onnx's
        del BACKENDS[name]  # back with the toy fixture's teardown
    peaks = {p: {"best": 1.0} for p in ("fp32", "int8")}
    rows = encode_speed(str(tiny_backbone), A + B, [1], 32, 2, tmp_path, [], peaks)
    assert [r["backend"] for r in rows] == [REFERENCE, DEFAULT, toy.name]
    assert all(r["sentences_per_s"] > 0 and r["peak_precision"] == "fp32" for r in rows)
    assert toy.name not in frontier.frontier_backends()  # fp32: torch's quality, nothing to trade
    monkeypatch.setattr(toy, "precision", "int8")
    assert frontier.frontier_backends() == [DEFAULT, toy.name]
    row = dict(task="mrpc", model="dse", seeds=1, score=0.8, score_std=None, sentences_per_s=9.0)
    frontier.plot([{**row, "backend": DEFAULT}, {**row, "backend": toy.name}], tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 0
