"""The models the benchmark times: the cross-encoder teacher and the student's encoder and heads.

Speed does not depend on trained weights, so by default everything is built from one backbone (the
embedded all-MiniLM-L6-v2): the teacher as a sequence classifier (num_labels 2, random classifier),
the paper's student built from its config (`student=dse`: top-4 token-mean concat pooling -> d = 4·H),
with a random concat head (the config's, hidden `--hidden`) and a dot head. With `--student EXPORT` the
trained export's encoder and head are timed instead, and the other head kind is random at the export's
width. Every bench row that builds a student (here, encode_speed.py, train_speed.py) uses `dse_student`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hydra.utils import instantiate
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ..config import load_task, student_config
from ..embeddings.encode import EncodeFn
from ..export import load_student
from ..export.backends import DEFAULT
from ..models.build import build_student
from ..models.components import DotHead, SiameseStudent

STUDENT = "dse"  # conf/student/dse.yaml: the paper's student, the one every bench row builds


@dataclass
class BenchStudent:
    encode_fn: EncodeFn  # a batch of sentences -> (B, d)
    heads: dict[str, nn.Module]  # "concat" / "dot" -> head, eval mode
    embed_dim: int
    sources: dict[str, str]  # head kind -> where its weights came from


def build_teacher(backbone: str) -> tuple[nn.Module, AutoTokenizer]:
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    return model.eval(), AutoTokenizer.from_pretrained(backbone)


def dse_student(backbone: str, num_layers: int | None = None) -> SiameseStudent:
    """The paper's student built from its config (`student=dse`) on `backbone`, cut to `num_layers` (None:
    all), its head with one output (a binary task's)."""
    cfg = student_config(STUDENT, {"backbone": backbone, "encoder.num_layers": num_layers})
    return build_student(cfg, load_task("mrpc"))


def _random_head(kind: str, d: int, hidden: int) -> nn.Module:
    torch.manual_seed(0)
    if kind == "dot":
        return DotHead(d).eval()
    head = student_config(STUDENT, {"head.hidden_dim": hidden}).head
    return instantiate(head, _partial_=True)(embed_dim=d, num_outputs=1).eval()


def paper_student(backbone: str, max_length: int, hidden: int, name: str) -> BenchStudent:
    encoder = dse_student(backbone).encoder.eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone)

    def encode(batch: list[str]) -> torch.Tensor:
        feats = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return encoder(feats["input_ids"], feats["attention_mask"], feats.get("token_type_ids"))  # (B, d)

    d = encoder.embed_dim
    heads = {kind: _random_head(kind, d, hidden) for kind in ("concat", "dot")}
    source = f"{name} encoder (top-4 token-mean concat pooling), random {{}} head"
    return BenchStudent(encode, heads, d, {k: source.format(k) for k in heads})


def exported_student(path: str, hidden: int, backend: str = DEFAULT) -> BenchStudent:
    """A trained export's encoder (served by `backend`) and its head; the other head kind random."""
    student = load_student(path, backend)
    own, d = student.head.name, student.head.embed_dim
    heads = {
        kind: student.head if kind == own else _random_head(kind, d, hidden) for kind in ("concat", "dot")
    }
    sources = {k: f"export {path}" if k == own else f"export {path} encoder, random {k} head" for k in heads}
    return BenchStudent(student.encode_batch, heads, d, sources)
