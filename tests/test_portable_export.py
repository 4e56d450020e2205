"""Exports that sentence-transformers alone loads: the DSE pooling's code travels in the folder, native
poolings use sentence-transformers' own module, and the reported embedding width is the real one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from conftest import TINY_BERT
from dse_lightning import load_student
from dse_lightning.export import export_student
from dse_lightning.models.components.encoders import TransformerEncoder
from dse_lightning.models.components.heads import ConcatHead
from dse_lightning.models.components.pooling import Pooling
from dse_lightning.models.components.student import SiameseStudent
from test_distill import MRPC

SENTENCES = ["A man is playing a guitar.", "Shares of the company rose 5 percent on Monday.", "Hi."]
# A Python without dse_lightning: its import fails, as in a virtualenv that only has sentence-transformers.
WITHOUT_US = """
import importlib.abc, json, sys
class NoDSE(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "dse_lightning":
            raise ModuleNotFoundError("dse_lightning is not installed here")
sys.meta_path.insert(0, NoDSE())
from sentence_transformers import SentenceTransformer
loads, sentences = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = []
for path, trust in loads:
    try:
        model = SentenceTransformer(path, device="cpu", trust_remote_code=trust)
    except Exception as err:
        out.append({"error": f"{type(err).__name__}: {err}"})
        continue
    emb = model.encode(sentences, convert_to_numpy=True)
    out.append({"dim": model.get_sentence_embedding_dimension(), "emb": emb.tolist()})
print(json.dumps(out))
"""


def export(tmp_path: Path, tokenizer_path: str, mode: str, exclude_cls: bool = True, projection=None) -> Path:
    torch.manual_seed(0)
    encoder = TransformerEncoder(TINY_BERT, Pooling(mode, k=2, exclude_cls=exclude_cls), projection)
    student = SiameseStudent(encoder, ConcatHead(encoder.embed_dim, 1)).eval()
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    return export_student(tmp_path / f"{mode}_{exclude_cls}_{projection}", student, tok, MRPC, 32)


def st_alone(loads: list[tuple[Path, bool]]) -> list[dict]:
    """sentence-transformers in a fresh Python that cannot import dse_lightning, its own HF cache: each
    (folder, trust_remote_code) loaded in turn, in one process (its start-up is most of the cost). One
    {"dim", "emb"} (or {"error"}) per load."""
    arg = json.dumps([(str(path), trust) for path, trust in loads])
    cmd = [sys.executable, "-c", WITHOUT_US, arg, json.dumps(SENTENCES)]
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(loads[0][0].parent / "hf_home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_dse_export_loads_in_sentence_transformers_without_dse_lightning(tmp_path, tokenizer_path) -> None:
    path = export(tmp_path, tokenizer_path, "top_k_mean")
    assert json.loads((path / "modules.json").read_text())[1]["type"] == "dse_pooling.DSEPooling"
    refused, out = st_alone([(path, False), (path, True)])  # custom code is custom code: the flag is needed
    assert "trust_remote_code=True" in refused["error"]
    ours = load_student(path).encode(SENTENCES)
    torch.testing.assert_close(torch.tensor(out["emb"]), ours, atol=1e-5, rtol=0)
    assert out["dim"] == ours.shape[1] == 2 * TINY_BERT["hidden_size"]


def test_a_shallow_student_pooling_the_embeddings_exports_what_it_trained(tmp_path, tokenizer_path) -> None:
    """pool_embeddings: 2 kept layers of a top-4 pooling pool 3 vectors, the embeddings' output the last;
    the export (its shipped pooling) encodes as the training encoder does, with or without dse_lightning."""
    torch.manual_seed(0)
    encoder = TransformerEncoder(TINY_BERT, Pooling("top_k_mean", k=4), num_layers=2, pool_embeddings=True)
    assert encoder.embed_dim == 3 * TINY_BERT["hidden_size"]
    student = SiameseStudent(encoder, ConcatHead(encoder.embed_dim, 1)).eval()
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    path = export_student(tmp_path / "emb", student, tok, MRPC, 32)
    assert json.loads((path / "1_DSEPooling" / "config.json").read_text())["embeddings"] is True
    feats = tok(SENTENCES, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        trained = encoder(feats["input_ids"], feats["attention_mask"], feats["token_type_ids"])
        states = encoder.backbone(**feats, output_hidden_states=True).hidden_states
    lowest = Pooling("mean")([states[0]], feats["attention_mask"])  # the embeddings' token mean
    torch.testing.assert_close(trained[:, -TINY_BERT["hidden_size"] :], lowest)
    (alone,) = st_alone([(path, True)])
    torch.testing.assert_close(load_student(path).encode(SENTENCES), trained, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(alone["emb"]), trained, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"k=4 but the backbone has 2 layers \(and the embeddings' output\)"):
        Pooling("top_k_mean", k=4, embeddings=True)(states, feats["attention_mask"])


def test_native_poolings_load_without_remote_code(tmp_path, tokenizer_path) -> None:
    paths = [
        export(tmp_path, tokenizer_path, m, cls)
        for m, cls in [("mean", False), ("cls", True), ("max", False)]
    ]
    assert not [p for p in paths if (p / "dse_pooling.py").exists()]
    for path, out in zip(paths, st_alone([(p, False) for p in paths]), strict=True):
        assert "error" not in out, out
        ours = load_student(path).encode(SENTENCES)
        torch.testing.assert_close(torch.tensor(out["emb"]), ours, atol=1e-5, rtol=0, msg=str(path))
        assert out["dim"] == ours.shape[1]


@pytest.mark.parametrize(
    ("mode", "exclude_cls", "projection"),
    [
        ("top_k_mean", True, None),
        ("mean", True, None),
        ("max", True, None),
        ("mean", False, 8),
        ("top_k_mean", True, 8),
    ],
)
def test_reported_dimension_is_the_encoded_width(
    tmp_path, tokenizer_path, mode, exclude_cls, projection
) -> None:
    from sentence_transformers import SentenceTransformer

    path = export(tmp_path, tokenizer_path, mode, exclude_cls, projection)
    model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True)
    assert model.get_sentence_embedding_dimension() == model.encode(SENTENCES).shape[1]
