"""Export a trained SiameseStudent and load it back for encoding and scoring.

Layout of an export folder:
- `student.json`: format, kind ("transformer" | "bilstm"), task type and labels, head and encoder specs.
- `head.safetensors`: the pair head's weights.
- kind "transformer": the folder is also a sentence-transformers model (modules.json, the fine-tuned
  backbone, `DSEPooling`, and a Dense layer when the encoder has a projection).
- kind "bilstm": `encoder.safetensors` and `tokenizer/`.
`student.json` (written last) records the sha256 of every other file; `load_student` checks them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ..models.components.encoders import BiLSTMEncoder, TransformerEncoder
from ..models.components.student import build_head
from ..utils.io import CorruptArtifactError, atomic_dir, tree_problems, tree_sha256
from .st_modules import DSEPooling

FORMAT = "dse-student/1"


def _head_spec(head: nn.Module) -> dict:
    if hasattr(head, "fc1"):  # ConcatHead: fc1 is Linear(4d, hidden)
        return {
            "kind": "concat",
            "embed_dim": head.fc1.in_features // 4,
            "num_outputs": head.fc2.out_features,
            "hidden_dim": head.fc1.out_features,
        }
    return {"kind": "dot", "embed_dim": head.embed_dim, "num_outputs": 1, "normalize": head.normalize}


def _bilstm_spec(enc: BiLSTMEncoder) -> dict:
    return {
        "vocab_size": enc.embedding.num_embeddings,
        "embedding_dim": enc.embedding.embedding_dim,
        "hidden_dim": enc.lstm.hidden_size,
        "num_layers": enc.lstm.num_layers,
        "padding_idx": enc.embedding.padding_idx,
    }


def _save_sentence_transformer(enc: TransformerEncoder, tokenizer, out: Path, max_length: int) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Transformer

    backbone_dir = out / ".backbone"
    enc.backbone.save_pretrained(backbone_dir)
    tokenizer.save_pretrained(backbone_dir)
    modules = [
        Transformer(
            str(backbone_dir), config_kwargs={"output_hidden_states": True}, max_seq_length=max_length
        )
    ]
    p = enc.pooling
    modules.append(DSEPooling(mode=p.mode, k=p.k, exclude_cls=p.exclude_cls))
    if enc.projection is not None:
        proj = enc.projection
        modules.append(
            Dense(
                proj.in_features,
                proj.out_features,
                activation_function=nn.Identity(),
                init_weight=proj.weight.detach().clone(),
                init_bias=proj.bias.detach().clone(),
            )
        )
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    shutil.rmtree(backbone_dir)  # the SentenceTransformer folder now holds its own copy


def export_student(
    path: str | Path,
    student: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task_type: str,
    labels: list[str],
    max_length: int,
) -> Path:
    """Write `student` (a SiameseStudent) to `path` atomically."""
    path = Path(path)
    enc = student.encoder
    spec = {
        "format": FORMAT,
        "task_type": task_type,
        "labels": labels,
        "max_length": max_length,
        "head": _head_spec(student.head),
    }
    with atomic_dir(path) as tmp:
        save_file({k: v.contiguous() for k, v in student.head.state_dict().items()}, tmp / "head.safetensors")
        if isinstance(enc, TransformerEncoder):
            spec["kind"] = "transformer"
            _save_sentence_transformer(enc, tokenizer, tmp, max_length)
        else:
            spec["kind"], spec["encoder"] = "bilstm", _bilstm_spec(enc)
            save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, tmp / "encoder.safetensors")
            tokenizer.save_pretrained(tmp / "tokenizer")
        spec["sha256"] = tree_sha256(tmp)
        (tmp / "student.json").write_text(json.dumps(spec, indent=2))
    return path


def verify_export(path: str | Path, remedy: str | None = None) -> dict:
    """The export's spec (student.json) after checking every file it lists against its sha256."""
    path = Path(path)
    spec_file = path / "student.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{path}: not a student export (no student.json)")
    spec = json.loads(spec_file.read_text())
    if spec.get("format") != FORMAT:
        raise ValueError(f"{spec_file}: format {spec.get('format')!r}, expected {FORMAT!r}")
    if problems := tree_problems(path, spec.get("sha256", {})):
        raise CorruptArtifactError(
            f"{path}: a truncated or corrupted student export ({'; '.join(problems)}); "
            + (remedy or "export it again (rerun the training command) or restore the folder from a copy")
        )
    return spec


class ExportedStudent:
    """`encode(sentences) -> (N, D)`; `score(a, b) -> (N,)` P(positive) / score, or (N, C) class probs."""

    def __init__(self, spec: dict, head: nn.Module, encode_fn) -> None:
        self.spec, self.head, self._encode = spec, head.eval(), encode_fn

    @torch.inference_mode()
    def encode(self, sentences: list[str], batch_size: int = 64) -> torch.Tensor:
        return torch.cat(
            [self._encode(sentences[i : i + batch_size]) for i in range(0, len(sentences), batch_size)]
        )

    @torch.inference_mode()
    def score(self, sentences_a: list[str], sentences_b: list[str], batch_size: int = 64) -> torch.Tensor:
        logits = self.head(self.encode(sentences_a, batch_size), self.encode(sentences_b, batch_size))
        return logits_to_scores(self.spec["task_type"], logits)


def logits_to_scores(task_type: str, logits: torch.Tensor) -> torch.Tensor:
    """Head logits (N, C) -> (N,) P(positive) (binary) or the score (regression); (N, C) class probs."""
    if task_type == "regression":
        return logits.squeeze(-1)
    if task_type == "binary":
        return logits.squeeze(-1).sigmoid()
    return logits.softmax(-1)


def _bilstm_encode_fn(path: Path, spec: dict, max_length: int):
    encoder = BiLSTMEncoder(**spec["encoder"], dropout=0.0)
    encoder.load_state_dict(load_file(path / "encoder.safetensors"))
    encoder.eval()
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")

    def encode(batch: list[str]) -> torch.Tensor:
        feats = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return encoder(feats["input_ids"], feats["attention_mask"])

    return encode


def load_student(path: str | Path) -> ExportedStudent:
    path = Path(path)
    spec = verify_export(path)
    head_kw = dict(spec["head"])
    head = build_head(head_kw.pop("kind"), **head_kw)
    head.load_state_dict(load_file(path / "head.safetensors"))
    if spec["kind"] == "bilstm":
        return ExportedStudent(spec, head, _bilstm_encode_fn(path, spec, spec["max_length"]))
    from sentence_transformers import SentenceTransformer

    # trust_remote_code: modules.json names our DSEPooling class (dse_lightning must be importable).
    model = SentenceTransformer(str(path), device="cpu", trust_remote_code=True)
    return ExportedStudent(spec, head, lambda batch: model.encode(batch, convert_to_tensor=True))
