"""DistillModule on tiny random students: fast_dev_run, teacher targets by id, export round trip."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY_BERT
from dse_lightning import load_student
from dse_lightning.config import load_task
from dse_lightning.data.datamodule import GluePairDataModule
from dse_lightning.export import export_student
from dse_lightning.logits import KeyedLogits, LogitsMismatchError
from dse_lightning.losses import MSE
from dse_lightning.models.components import (
    BiLSTMEncoder,
    ConcatHead,
    DotHead,
    Pooling,
    SiameseStudent,
    TransformerEncoder,
)
from dse_lightning.models.distill_module import DistillModule
from dse_lightning.targets import StudentTargets

MRPC = load_task("mrpc")


def tiny_student(kind: str, head: str = "concat") -> SiameseStudent:
    if kind == "dse":
        encoder = TransformerEncoder(TINY_BERT, Pooling("top_k_mean", k=2))
    else:
        encoder = BiLSTMEncoder.from_backbone(TINY_BERT, hidden_dim=16)
    pair_head = ConcatHead(encoder.embed_dim, 1) if head == "concat" else DotHead(encoder.embed_dim)
    return SiameseStudent(encoder, pair_head)


def sentence_dm(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path, **kw) -> GluePairDataModule:
    dm = GluePairDataModule(
        MRPC,
        tokenizer_path,
        view="sentence",
        dir=str(mrpc_dir),
        cache_dir=str(tmp_path / "cache"),
        batch_size=8,
        max_length=32,
        **kw,
    )
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.mark.parametrize(("kind", "head"), [("dse", "concat"), ("bilstm", "concat"), ("dse", "dot")])
def test_distill_fast_dev_run(
    kind: str, head: str, mrpc_dir: Path, tokenizer_path: str, tmp_path: Path
) -> None:
    ids = sentence_dm(mrpc_dir, tokenizer_path, tmp_path).ids("train")
    # Teacher logits in another order are joined by id: the row of id ids[i] gets z = i.
    n = len(ids)
    raw = torch.stack([torch.zeros(n), torch.arange(n, dtype=torch.float32)], dim=1)  # (N, 2)
    logits = KeyedLogits(ids[::-1], raw.flip(0), "test").map(MRPC.kind.student_targets)
    dm = sentence_dm(mrpc_dir, tokenizer_path, tmp_path, targets=StudentTargets(logits=logits))
    batch = next(iter(dm.predict_dataloader()))
    assert batch["teacher_logits"].shape == (len(batch["ids"]), 1)
    assert batch["teacher_logits"][:, 0].tolist() == [float(ids.index(i)) for i in batch["ids"]]
    module = DistillModule(
        dm.task,
        tiny_student(kind, head),
        MSE(MRPC.kind, alpha=0.5),
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
    )
    before = [p.detach().clone() for p in module.student.encoder.parameters()]
    trainer = pl.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    after = list(module.student.encoder.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))  # the encoder trained
    assert {"train/loss", "train/distill_loss", "val/acc", "val/f1"} <= set(trainer.callback_metrics)


@pytest.mark.parametrize("kind", ["dse", "bilstm"])
def test_export_round_trip(kind: str, mrpc_dir: Path, tokenizer_path: str, tmp_path: Path) -> None:
    dm = sentence_dm(mrpc_dir, tokenizer_path, tmp_path)
    student = tiny_student(kind).eval()
    a = ["A man is playing a guitar.", "Shares of the company rose 5 percent on Monday."]
    b = ["Someone plays guitar.", "The cat sleeps."]
    export_student(tmp_path / "export", student, dm.tokenizer, MRPC, max_length=32)
    loaded = load_student(tmp_path / "export")
    with torch.no_grad():
        feats = dm.tokenizer(a + b, truncation=True, max_length=32, padding=True, return_tensors="pt")
        emb = student.encode(dict(feats))  # (4, D), as in training
        probs = student.head(emb[:2], emb[2:]).squeeze(-1).sigmoid()
    torch.testing.assert_close(loaded.encode(a + b), emb, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(loaded.score(a, b), probs, atol=1e-5, rtol=1e-4)


def test_dse_export_is_a_sentence_transformer(tokenizer_path: str, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    student = tiny_student("dse").eval()
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    export_student(tmp_path / "export", student, tok, MRPC, max_length=32)
    st = SentenceTransformer(str(tmp_path / "export"), device="cpu", trust_remote_code=True)
    sentences = ["One sentence here.", "And another, somewhat longer, sentence."]
    with torch.no_grad():
        expected = student.encode(dict(tok(sentences, padding=True, return_tensors="pt")))
    torch.testing.assert_close(st.encode(sentences, convert_to_tensor=True), expected, atol=1e-5, rtol=1e-4)


def test_targets_missing_train_ids_are_refused(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path) -> None:
    ids = sentence_dm(mrpc_dir, tokenizer_path, tmp_path).ids("train")
    targets = StudentTargets(logits=KeyedLogits(ids[:3], torch.zeros(3, 1), "x.pt"))
    with pytest.raises(LogitsMismatchError, match=r"teacher logits x\.pt lack 45 of 48 ids"):
        sentence_dm(mrpc_dir, tokenizer_path, tmp_path, targets=targets)


def test_online_frozen_teacher(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path) -> None:
    from dse_lightning.models.teacher_module import TeacherModule

    teacher = TeacherModule(MRPC, TINY_BERT, optimizer=partial(torch.optim.AdamW, lr=1e-3))
    dm = sentence_dm(mrpc_dir, tokenizer_path, tmp_path, targets=StudentTargets(online=teacher))
    batch = next(iter(dm.train_dataloader()))
    assert batch["pair"]["input_ids"].shape[0] == len(batch["ids"]) and "teacher_logits" not in batch
    before = [p.detach().clone() for p in teacher.parameters()]
    module = DistillModule(
        dm.task,
        tiny_student("bilstm"),
        MSE(MRPC.kind, alpha=1.0),
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
        teacher=teacher,
    )
    trainer = pl.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    assert trainer.callback_metrics["train/distill_loss"] > 0  # alpha=1: the loss is the teacher's term
    assert all(torch.equal(b, p) for b, p in zip(before, teacher.parameters(), strict=True))  # frozen
    assert not teacher.training


def test_corrupted_export_is_refused(tokenizer_path: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from dse_lightning.utils.io import CorruptArtifactError

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    out = export_student(tmp_path / "export", tiny_student("bilstm"), tok, MRPC, max_length=32)
    weights = out / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(
        CorruptArtifactError,
        match=r"export/encoder\.safetensors: sha256 .* does not match .*manifest\.json .* corrupted",
    ):
        load_student(out)


def test_head_lr_reaches_the_optimizer_for_the_head_only() -> None:
    module = DistillModule(
        MRPC,
        tiny_student("dse"),
        MSE(MRPC.kind),
        optimizer=partial(torch.optim.AdamW, lr=1e-5),
        head_lr=1e-3,
    )
    opt = module.configure_optimizers()  # no scheduler: the optimizer alone
    head = {id(p) for p in module.student.head.parameters()}
    for group in opt.param_groups:
        assert {id(p) in head for p in group["params"]} == {group["lr"] == 1e-3}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(module.parameters()))
