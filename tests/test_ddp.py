"""DDP on CPU (2 gloo processes) reproduces one process: dev metrics, teacher logits, one run dir, and a
teacher-labelled transfer set.

Each run is the real CLI in a subprocess, because Lightning's DDP launcher re-runs the command per rank.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import run_cli, save_tiny_bert
from dse_lightning import load_student
from dse_lightning.results import with_local_paths

pytestmark = pytest.mark.slow


def results(
    tmp_path: Path, name: str, backbone: Path, data: Path, *extra: str, cache: Path | None = None
) -> dict:
    """The run's results.json, its paths local; each run has its own cache unless `cache` is given."""
    run_dir = tmp_path / "runs" / name
    run_cli(backbone, data, cache or tmp_path / name / "cache", f"hydra.run.dir={run_dir}", *extra)
    return with_local_paths(json.loads((run_dir / "results.json").read_text()), run_dir)


def test_ddp_cpu_matches_one_process(tmp_path: Path, tiny_backbone: Path, mrpc_dir: Path) -> None:
    one = results(tmp_path, "one", tiny_backbone, mrpc_dir)
    two = results(tmp_path, "ddp", tiny_backbone, mrpc_dir, "trainer=ddp_cpu")
    assert two["config"]["trainer"]["devices"] == 2
    for model in ("teacher", "student"):
        assert two[model]["metrics"] == pytest.approx(one[model]["metrics"], abs=1e-6), model
    # The exported logits: the same ids in the same order, no DistributedSampler padding, same values.
    a, b = (torch.load(r["teacher"]["logits"], weights_only=True) for r in (one, two))
    assert b["ids"] == a["ids"] and len(set(b["ids"])) == 48
    torch.testing.assert_close(b["logits"], a["logits"], rtol=0, atol=1e-5)
    # The students trained alike: their exported models score pairs the same.
    first = [f"The company said {i} shares rose." for i in range(8)]
    second = [f"Shares rose by {i} the company said." for i in range(8)]
    scores = [load_student(r["student"]["export"]).score(first, second) for r in (one, two)]
    torch.testing.assert_close(torch.as_tensor(scores[1]), torch.as_tensor(scores[0]), rtol=0, atol=1e-5)
    # One run dir for the job: rank 1 wrote its log into rank 0's dir instead of making its own.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp", "one"]
    assert (tmp_path / "runs" / "ddp" / "train_ddp_process_1.log").is_file()


@pytest.fixture(scope="module")
def spread_backbone(tmp_path_factory, tokenizer_path: str) -> Path:
    """A tiny BERT with large random weights: its logits differ from pair to pair by far more than 1e-5."""
    return save_tiny_bert(tmp_path_factory.mktemp("spread_bert"), tokenizer_path, initializer_range=0.5)


def test_ddp_cpu_labels_a_transfer_set_as_one_process(
    tmp_path: Path, spread_backbone: Path, mrpc_dir: Path
) -> None:
    """Transfer-set labelling honours `trainer=`: under ddp_cpu each process labels its share of every chunk
    and rank 0 saves it, and the labelled set equals the one-process one (the same cached teacher labels
    both). 32 gold pairs lack a dev sentence: 64 perturbed pairs, in chunks of 21, 21, 21 and 1 (whose one
    batch leaves rank 1 nothing to label)."""
    cache, store = tmp_path / "cache", tmp_path / "cache" / "transfer" / "mrpc"
    tang = ("augment=tang", "augment.chunk_size=21", "augment.batch_size=8", "student.max_epochs=1")
    results(tmp_path, "one", spread_backbone, mrpc_dir, *tang, cache=cache)
    store.rename(tmp_path / "one_transfer")
    shutil.rmtree(cache / "students")  # else the DDP run reuses the student and labels nothing
    two = results(tmp_path, "ddp", spread_backbone, mrpc_dir, "trainer=ddp_cpu", *tang, cache=cache)
    assert two["config"]["trainer"]["devices"] == 2 and two["teacher"]["reused"]
    [a], [b] = (tmp_path / "one_transfer").glob("*/logits.pt"), store.glob("*/logits.pt")
    assert a.parent.name == b.parent.name and not list(store.glob("*.work"))  # the same key; chunks retired
    assert (b.parent / "pairs.json").read_text() == (a.parent / "pairs.json").read_text()
    one, ddp = (torch.load(p, weights_only=True) for p in (a, b))
    assert ddp["ids"] == one["ids"] and len(one["ids"]) == 64
    assert (one["logits"].std(0) > 1e-2).all()  # a mislabelled pair would show
    torch.testing.assert_close(ddp["logits"], one["logits"], rtol=0, atol=1e-5)


def test_ddp_cpu_labels_a_transfer_set_through_the_teachers_graph(
    tmp_path: Path, spread_backbone: Path, mrpc_dir: Path
) -> None:
    """`teacher.backend=onnx` under ddp_cpu: rank 0 makes the teacher's graph once (rank 1 waits for it),
    each process labels its share through it, and the labels are torch's within float noise."""
    cache, store = tmp_path / "cache", tmp_path / "cache" / "transfer" / "mrpc"
    tang = ("augment=tang", "augment.chunk_size=21", "augment.batch_size=8", "student.max_epochs=1")
    results(tmp_path, "one", spread_backbone, mrpc_dir, *tang, cache=cache)
    [fp32] = store.glob("*/logits.pt")
    graph_run = ("trainer=ddp_cpu", "teacher.backend=onnx", *tang)
    two = results(tmp_path, "ddp", spread_backbone, mrpc_dir, *graph_run, cache=cache)
    assert (
        two["teacher"]["reused"]
        and len(list((cache / "teacher_graphs" / "mrpc").glob("*/onnx/model.onnx"))) == 1
    )
    [graph] = [p for p in store.glob("*/logits.pt") if p != fp32]
    one, ddp = (torch.load(p, weights_only=True) for p in (fp32, graph))
    assert (
        ddp["ids"] != one["ids"] and len(ddp["ids"]) == len(one["ids"]) == 64
    )  # another set's ids, same pairs
    assert (graph.parent / "pairs.json").read_text() == (fp32.parent / "pairs.json").read_text()
    torch.testing.assert_close(ddp["logits"], one["logits"], rtol=0, atol=1e-4)
    # The graph judged on dev from every rank's share, gathered: the fp32 teacher's metrics (fp32 onnx).
    (served,) = two["student"]["targets"]["teacher_backend"]
    assert served["metrics"] and served["metrics"] == pytest.approx(served["fp32_metrics"], abs=1e-3)
