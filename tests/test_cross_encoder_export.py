"""A teacher's CrossEncoder export: sentence-transformers alone loads it and predicts the teacher's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from transformers import AutoTokenizer

from conftest import TINY_BERT
from dse_lightning.config import load_task
from dse_lightning.export.backends import BACKENDS
from dse_lightning.export.card import RunFacts, cross_encoder_card
from dse_lightning.export.cross_encoder import KIND, export_cross_encoder, load_cross_encoder
from dse_lightning.export.evaluate import backend_metrics
from dse_lightning.export.onnx import add_onnx
from dse_lightning.models.teacher_module import TeacherModule
from dse_lightning.pipeline.inference import PairRows, predict_logits
from dse_lightning.results import TeacherResult
from dse_lightning.store import verify

MAX_LENGTH = 24
LONG = " ".join(["the committee said on monday that shares rose five percent"] * 4)  # > MAX_LENGTH tokens
PAIRS = [
    ("A man is playing a guitar.", "Someone plays the guitar."),
    ("Shares rose 5 percent.", "The company reported a loss."),
    ("Hi.", "Hello there, how are you today?"),
    (LONG, "Shares rose."),
]
# A Python where dse_lightning cannot be imported, as in a virtualenv with only sentence-transformers.
WITHOUT_US = """
import json, sys
sys.modules["dse_lightning"] = None  # any import of it raises ImportError
from sentence_transformers import CrossEncoder
paths, pairs = json.loads(sys.argv[1]), [tuple(p) for p in json.loads(sys.argv[2])]
out = []
for path in paths:
    model = CrossEncoder(path, device="cpu")
    logits = model.predict(pairs, batch_size=2, convert_to_numpy=True)
    probs = model.predict(pairs, batch_size=2, convert_to_numpy=True, apply_softmax=True)
    out.append({"logits": logits.tolist(), "probs": probs.tolist(), "max_length": model.max_seq_length})
assert not [m for m, mod in sys.modules.items() if m.startswith("dse_lightning") and mod is not None]
print(json.dumps(out))
"""


def teacher(task: str) -> TeacherModule:
    torch.manual_seed(0)  # large random weights: the pairs' logits differ by far more than the tolerance
    spread = {**TINY_BERT, "initializer_range": 0.5}
    return TeacherModule(load_task(task), spread, optimizer=partial(torch.optim.AdamW, lr=1e-3))


def card(module: TeacherModule) -> str:
    task = module.task
    result = TeacherResult("tiny", "0123abcd", {"acc": 0.5} if task.num_labels > 1 else {"pearson": 0.1}, 7)
    data = {"train": {"source": "glue/train.tsv", "sha256": "f" * 64}}
    facts = RunFacts(task=task, teacher=result, backbone=TINY_BERT, command=["task=x"], data=data)
    return cross_encoder_card(facts, MAX_LENGTH)


def ours(module: TeacherModule, tokenizer) -> torch.Tensor:
    """(N, C) the teacher's logits on PAIRS, tokenised as its pair view."""
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    rows = PairRows(PAIRS, [str(i) for i in range(len(PAIRS))], tokenizer, MAX_LENGTH, batch_size=3)
    return predict_logits(trainer, module, rows).values


def st_alone(paths: list[Path]) -> list[dict]:
    cmd = [sys.executable, "-c", WITHOUT_US, json.dumps([str(p) for p in paths]), json.dumps(PAIRS)]
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(paths[0].parent / "hf_home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cross_encoder_predicts_the_teachers_logits_without_dse_lightning(tmp_path, tokenizer_path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    assert len(tokenizer(*PAIRS[-1])["input_ids"]) > MAX_LENGTH  # the long pair is truncated
    tasks = ["mrpc", "mnli", "stsb"]  # 2 logits, 3 logits, one regression output
    modules = {t: teacher(t) for t in tasks}
    paths = [
        export_cross_encoder(tmp_path / t, m.model, tokenizer, m.task, MAX_LENGTH, card(m))
        for t, m in modules.items()
    ]
    for (name, module), path, out in zip(modules.items(), paths, st_alone(paths), strict=True):
        expected = ours(module, tokenizer)  # (N, C)
        got = torch.tensor(out["logits"]).reshape(expected.shape)  # stsb: (N,) from sentence-transformers
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5, msg=name)
        assert out["max_length"] == MAX_LENGTH and expected.std() > 1e-3  # not all alike
        if module.task.num_labels > 1:  # apply_softmax: the class probabilities (off by default)
            torch.testing.assert_close(torch.tensor(out["probs"]), expected.softmax(-1), rtol=0, atol=1e-5)
        assert verify(path, KIND, "")["max_length"] == MAX_LENGTH  # every file as the manifest lists it
        readme = (path / "README.md").read_text()
        assert "CrossEncoder(" in readme and f"| max length | {MAX_LENGTH} tokens |" in readme
        assert ("apply_softmax=True" in readme) == (module.task.num_labels > 1)
    config = json.loads((paths[1] / "config.json").read_text())
    assert list(config["id2label"].values()) == ["entailment", "neutral", "contradiction"]


def test_cross_encoder_graphs_serve_the_teachers_logits(tmp_path, tokenizer_path, mrpc_dir) -> None:
    """`export.onnx` gives a CrossEncoder export every backend's graphs (pairs in, logits out, OpenVINO int8
    calibrated on pairs); `load_cross_encoder` serves each: torch and the fp32 graphs predict the teacher's
    logits, the int8 ones approximately; `export.evaluate` reads the export's dev metrics per backend."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    module = teacher("mrpc")
    path = export_cross_encoder(tmp_path / "ce", module.model, tokenizer, module.task, MAX_LENGTH)
    graphs = add_onnx(path, [tuple(p) for p in PAIRS] * 8, "test pairs")
    assert verify(path, KIND, "")["onnx"] == graphs["onnx"] and set(graphs["onnx"]) == set(BACKENDS) - {
        "torch"
    }
    assert graphs["calibration"]["sentences"] == 4 * 8
    expected = ours(module, tokenizer)  # (N, 2)
    a, b = (list(side) for side in zip(*PAIRS, strict=True))
    for backend in ("torch", "onnx", "openvino"):
        got = load_cross_encoder(path, backend).logits(a, b, batch_size=3)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 if backend == "torch" else 1e-4)
    for backend in ("onnx-int8", "openvino-int8"):  # int8 of large random weights: the same classes
        got = load_cross_encoder(path, backend).logits(a, b, batch_size=3)
        assert torch.equal(got.argmax(-1), expected.argmax(-1)), backend
        assert torch.corrcoef(torch.stack([got.flatten(), expected.flatten()]))[0, 1] > 0.9, backend
    metrics = backend_metrics(path, "mrpc", ["torch", "onnx"], data_dir=str(mrpc_dir))
    assert set(metrics["torch"]) == {"acc", "f1"} and 0 <= metrics["torch"]["acc"] <= 1
    assert metrics["onnx"]["retention"]["acc"] == pytest.approx(1.0)  # the same predictions


def test_a_cross_encoder_without_a_graph_says_how_to_add_it(tmp_path, tokenizer_path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    module = teacher("stsb")
    path = export_cross_encoder(tmp_path / "ce", module.model, tokenizer, module.task, MAX_LENGTH)
    with pytest.raises(FileNotFoundError, match=r"no such graph encoder; add it with .*export\.onnx"):
        load_cross_encoder(path, "onnx-int8")
    add_onnx(path, backends=["onnx"])  # OpenVINO needs calibration pairs: not written without them
    assert set(verify(path, KIND, "")["onnx"]) == {"onnx"}
    got = load_cross_encoder(path, "onnx").logits(["a b", "c"], ["d", "e f g"])
    assert got.shape == (2, 1)  # a regression teacher's one output
