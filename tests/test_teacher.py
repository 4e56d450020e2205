"""TeacherModule on a tiny randomly initialised BERT: fast_dev_run, prediction, optimizer groups."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from conftest import TINY_BERT
from dse_lightning.config import load_task
from dse_lightning.data.datamodule import GluePairDataModule
from dse_lightning.models.optim import param_groups
from dse_lightning.models.teacher_module import TeacherModule
from dse_lightning.pipeline.inference import PairRows, predict_logits


def tiny_teacher(task_name: str = "mrpc") -> TeacherModule:
    return TeacherModule(
        load_task(task_name),
        TINY_BERT,
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
        scheduler=partial(get_linear_schedule_with_warmup),
    )


def test_fast_dev_run(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path) -> None:
    dm = GluePairDataModule(
        load_task("mrpc"), tokenizer_path, dir=str(mrpc_dir), cache_dir=str(tmp_path), batch_size=8
    )
    module = tiny_teacher()
    before = module.model.classifier.weight.detach().clone()
    trainer = pl.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    assert not torch.equal(before, module.model.classifier.weight)  # it trained
    assert trainer.callback_metrics["val/acc"].item() >= 0.0
    preds = trainer.predict(module, dataloaders=dm.predict_dataloader())
    assert preds[0]["logits"].shape == (48, 2)  # all 48 train rows fit one eval batch of 64
    assert preds[0]["ids"][:2] == ["1000_2000", "1001_2001"]


def test_predict_logits_gives_each_pair_its_own_logits_in_the_order_given(tokenizer_path: str) -> None:
    """PairRows predicts in length-sorted batches; the logits come back in the pairs' order, each as if
    the pair were predicted alone."""
    # Large random weights: the pairs' logits differ by far more than the tolerance.
    spread = {**TINY_BERT, "initializer_range": 0.5}
    torch.manual_seed(0)
    module = TeacherModule(load_task("mrpc"), spread, optimizer=partial(torch.optim.AdamW, lr=1e-3))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    words = "the cat sat on a mat while shares rose five percent today".split()
    pairs = [(" ".join(words[: 1 + 3 * i % 11]), " ".join(words[i % 5 :])) for i in range(7)]  # lengths mixed
    ids = [f"pair{i}" for i in reversed(range(7))]
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    got = predict_logits(trainer, module, PairRows(pairs, ids, tokenizer, max_length=32, batch_size=3))
    module.eval()
    with torch.no_grad():
        alone = torch.cat([module(dict(tokenizer([a], [b], return_tensors="pt"))) for a, b in pairs])
    assert got.ids == ids and got.values.shape == (7, 2)
    torch.testing.assert_close(got.values, alone, rtol=0, atol=1e-4)


def test_regression_teacher_has_one_output(glue_fixture_dir: Path, tokenizer_path: str) -> None:
    module = tiny_teacher("stsb")
    batch = {
        "input_ids": torch.randint(0, 100, (3, 7)),
        "attention_mask": torch.ones(3, 7, dtype=torch.long),
        "labels": torch.tensor([0.5, 2.0, 4.0]),
    }
    loss, logits = module.model_step(batch)
    assert logits.shape == (3, 1) and loss.ndim == 0


def test_no_weight_decay_on_bias_and_layernorm() -> None:
    module = tiny_teacher()
    decay, no_decay = param_groups(module, 0.01)
    names = {id(p): n for n, p in module.named_parameters()}
    assert all(not names[id(p)].endswith("bias") and "LayerNorm" not in names[id(p)] for p in decay["params"])
    assert all(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01


def test_lr_by_prefix_gives_the_head_its_own_learning_rate() -> None:
    module = tiny_teacher()
    groups = param_groups(module, 0.01, {"model.classifier.": 1e-3})
    assert [g.get("lr") for g in groups] == [None, None, 1e-3, 1e-3]
    names = {id(p): n for n, p in module.named_parameters()}
    head = [names[id(p)] for g in groups[2:] for p in g["params"]]
    assert sorted(head) == ["model.classifier.bias", "model.classifier.weight"]
    assert groups[3]["weight_decay"] == 0.0 and groups[2]["weight_decay"] == 0.01
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))
