"""GluePairDataModule: the two views, dynamic padding, and the provenance-keyed tokenisation cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from conftest import MRPC_HEADER, mrpc_rows, write_tsv
from dse_lightning.config import load_task
from dse_lightning.data.datamodule import GluePairDataModule


def make_dm(data_dir: Path, tokenizer: str, cache: Path, task: str = "mrpc", **kw) -> GluePairDataModule:
    dm = GluePairDataModule(load_task(task), tokenizer, dir=str(data_dir), cache_dir=str(cache), **kw)
    dm.prepare_data()
    dm.setup()
    return dm


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "tokenized").glob("*/*") if p.is_dir())


def test_pair_view_dynamic_padding(mrpc_dir: Path, tokenizer_path: str, tmp_path: Path) -> None:
    dm = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", batch_size=8, max_length=128)
    assert (dm.num_examples("train"), dm.num_examples("dev")) == (48, 16)
    batch = next(iter(dm.val_dataloader()[0]))
    longest = int(batch["attention_mask"].sum(1).max())
    assert batch["input_ids"].shape == (16, longest)  # padded to the batch, not to 128
    assert batch["labels"].tolist()[:3] == [0, 1, 1] and batch["ids"][0] == "1000_2000"
    assert set(batch["token_type_ids"].unique().tolist()) == {0, 1}


@pytest.mark.parametrize("view", ["pair", "sentence"])
def test_fixed_padding_pads_every_batch_to_max_length(
    view: str, mrpc_dir: Path, tokenizer_path: str, tmp_path: Path
) -> None:
    kw = {"view": view, "batch_size": 8, "max_length": 40}
    fixed = next(
        iter(
            make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", pad_to_max_length=True, **kw).train_dataloader()
        )
    )
    dynamic = next(iter(make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", **kw).train_dataloader()))
    feats, dyn = (fixed, dynamic) if view == "pair" else (fixed["sentences"], dynamic["sentences"])
    assert feats["input_ids"].shape[1] == 40 > dyn["input_ids"].shape[1]
    assert torch.equal(feats["attention_mask"].sum(1), dyn["attention_mask"].sum(1))  # same tokens, more pad


def test_sentence_view_tokenises_each_sentence_once(tmp_path: Path, tokenizer_path: str) -> None:
    rows = [
        ["1", "1", "2", "same first sentence", "other a"],
        ["0", "3", "4", "same first sentence", "other b"],
        ["1", "5", "6", "other a", "same first sentence"],
    ]
    write_tsv(tmp_path / "g/MRPC/train.tsv", MRPC_HEADER, rows)
    write_tsv(tmp_path / "g/MRPC/dev.tsv", MRPC_HEADER, rows[:1])
    dm = make_dm(tmp_path / "g", tokenizer_path, tmp_path / "c", view="sentence", batch_size=3)
    assert len(dm.data["train"]["sentences"]) == 3  # 6 sentence slots, 3 distinct texts
    batch = next(iter(dm.predict_dataloader()))
    tok = dm.tokenizer
    decode = [
        tok.decode(ids[mask.bool()], skip_special_tokens=True)
        for ids, mask in zip(
            batch["sentences"]["input_ids"], batch["sentences"]["attention_mask"], strict=True
        )
    ]
    assert [decode[i] for i in batch["a"]] == ["same first sentence"] * 2 + ["other a"]
    assert [decode[i] for i in batch["b"]] == ["other a", "other b", "same first sentence"]


def test_cache_reused_then_rebuilt_on_max_length_tokenizer_and_data(
    mrpc_dir: Path, tokenizer_path: str, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    make_dm(mrpc_dir, tokenizer_path, cache, max_length=64)
    first = entries(cache)
    assert len(first) == 2  # train + dev
    make_dm(mrpc_dir, tokenizer_path, cache, max_length=64)
    assert entries(cache) == first  # same provenance: reused
    make_dm(mrpc_dir, tokenizer_path, cache, max_length=32)
    assert len(entries(cache)) == 4  # max length changed: rebuilt
    other_tok = tmp_path / "tok"
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    tok.add_tokens(["dselightningtoken"])
    tok.save_pretrained(other_tok)
    make_dm(mrpc_dir, str(other_tok), cache, max_length=32)
    assert len(entries(cache)) == 6  # tokenizer changed: rebuilt
    write_tsv(mrpc_dir / "MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(15), bom=True)
    dm = make_dm(mrpc_dir, str(other_tok), cache, max_length=32)
    assert len(entries(cache)) == 7 and dm.num_examples("dev") == 15  # data changed: dev rebuilt


def test_limit_is_a_fixed_subset_with_its_own_checksum(
    mrpc_dir: Path, tokenizer_path: str, tmp_path: Path
) -> None:
    full = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c")
    a = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", limit_train=10)
    b = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", limit_train=10)
    assert a.num_examples("train") == 10 and a.ids("train") == b.ids("train")
    assert a.fingerprint("train") != full.fingerprint("train")


def test_mnli_has_two_eval_loaders_and_length_grouping(
    glue_fixture_dir: Path, tokenizer_path: str, tmp_path
) -> None:
    dm = make_dm(
        glue_fixture_dir, tokenizer_path, tmp_path / "c", task="mnli", batch_size=4, group_by_length=True
    )
    loaders = dm.val_dataloader()
    assert [len(dl.dataset) for dl in loaders] == [9, 6]
    seen = [i for b in dm.train_dataloader() for i in b["ids"]]
    assert sorted(seen) == sorted(dm.ids("train"))  # every row once per epoch


def test_unknown_view(mrpc_dir: Path, tokenizer_path: str) -> None:
    with pytest.raises(ValueError, match="data.view must be 'pair' or 'sentence'"):
        GluePairDataModule(load_task("mrpc"), tokenizer_path, view="triplet", dir=str(mrpc_dir))


def test_over_long_sentences_are_truncated_counted_and_logged(
    tmp_path: Path, tokenizer_path: str, caplog
) -> None:
    rows = mrpc_rows(6)
    rows[2][3] = " ".join(["word"] * 400)  # far over max_length
    write_tsv(tmp_path / "g/MRPC/train.tsv", MRPC_HEADER, rows)
    write_tsv(tmp_path / "g/MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(2))
    with caplog.at_level(logging.WARNING):
        pair = make_dm(tmp_path / "g", tokenizer_path, tmp_path / "c", max_length=32)
        sent = make_dm(tmp_path / "g", tokenizer_path, tmp_path / "c", max_length=32, view="sentence")
    assert pair.truncated == {"train": 1, "dev": 0} and sent.truncated == {"train": 1, "dev": 0}
    assert "mrpc/train: 1 input(s) longer than max_length=32 were truncated" in caplog.text
    assert max(len(x) for x in pair.data["train"]["pairs"]["input_ids"]) == 32
    manifest = next((tmp_path / "c/tokenized/mrpc").glob("train.pair.*/manifest.json"))
    meta = json.loads(manifest.read_text())["meta"]
    assert meta["truncated"] == 1 and meta["rows"] == 6


def test_corrupted_or_incomplete_cache_entry_is_rebuilt(
    mrpc_dir: Path, tokenizer_path: str, tmp_path: Path, caplog
) -> None:
    cache = tmp_path / "c"
    ids = make_dm(mrpc_dir, tokenizer_path, cache).ids("train")
    entry = next((cache / "tokenized/mrpc").glob("train.pair.*"))
    arrow = next((entry / "data").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])  # truncated
    with caplog.at_level(logging.WARNING):
        again = make_dm(mrpc_dir, tokenizer_path, cache)
    assert (
        f"tokenisation cache {entry} is incomplete or corrupted" in caplog.text
        and "rebuilding it" in caplog.text
    )
    assert again.ids("train") == ids
    (entry / "manifest.json").unlink()  # a copy that never finished: no marker
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make_dm(mrpc_dir, tokenizer_path, cache)
    assert "(no manifest.json)" in caplog.text and "rebuilding it" in caplog.text
    assert (entry / "manifest.json").is_file()


def test_train_order_is_seeded_per_epoch_and_resumes_mid_epoch(
    mrpc_dir: Path, tokenizer_path: str, tmp_path: Path
) -> None:
    dm = make_dm(mrpc_dir, tokenizer_path, tmp_path / "c", batch_size=8, seed=4)
    loader = dm.train_dataloader()
    epoch0 = [b["ids"] for b in loader]
    loader.sampler.set_epoch(1)
    assert [b["ids"] for b in loader] != epoch0 and sorted(sum(epoch0, [])) == sorted(dm.ids("train"))
    loader.sampler.set_epoch(0)
    assert [b["ids"] for b in loader] == epoch0  # rebuilt from seed + epoch, not from the global RNG
    # A checkpoint taken after 2 batches: a new loader given that state yields the remaining 4.
    dm.load_state_dict({"train_loader": {"epoch": 0, "batches": 2}})
    resumed = dm.train_dataloader()
    assert [b["ids"] for b in resumed] == epoch0[2:] and dm.state_dict()["train_loader"] == {
        "epoch": 0,
        "batches": 6,
    }


def test_rows_without_a_gold_label_are_marked_in_the_batch(tokenizer_path: str) -> None:
    import datasets

    from dse_lightning.data.collate import SentencePairCollator

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    sentences = datasets.Dataset.from_dict({"text": ["a b", "c d e"]}).map(
        lambda b: tok(b["text"]), batched=True
    )
    rows = [  # a gold pair, and a pair only the teacher labelled (its label is a placeholder)
        {"id": "x", "label": 1, "a": 0, "b": 1, "teacher": [0.5], "has_label": True},
        {"id": "y", "label": 0, "a": 1, "b": 0, "teacher": [-1.0], "has_label": False},
    ]
    batch = SentencePairCollator(tok, sentences)(rows)
    assert batch["has_label"].tolist() == [True, False] and batch["teacher_logits"][:, 0].tolist() == [
        0.5,
        -1.0,
    ]
    gold_only = [{k: v for k, v in r.items() if k != "has_label"} for r in rows]
    assert "has_label" not in SentencePairCollator(tok, sentences)(gold_only)  # gold data: no mask at all
