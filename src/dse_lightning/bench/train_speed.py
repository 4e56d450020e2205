"""Training throughput (pairs/s) of the teacher and the `dse` student on real train pairs: the project's
batching (per-batch dynamic padding, length-grouped batches) against every batch padded to max_length, as
the original DSE code pads to 128. Both read the same rows through `GluePairDataModule`; a step is forward,
backward and an AdamW update. The speed-up's FLOP bound is the ratio of the tokens each computes (dense
FLOPs grow with tokens; attention's T² term makes the padded side's cost, and so the bound, higher still).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from ..config import load_task
from ..data.datamodule import GluePairDataModule
from ..models.components import SiameseStudent
from .models import dse_student
from .timing import max_rss_mib

BATCHING = {"dynamic": "dynamic padding, length-grouped", "fixed": "padded to max_length"}


def _loader(view: str, batching: str, cfg, task: str, cache: Path):
    dm = GluePairDataModule(
        load_task(task),
        cfg.backbone,
        view=view,
        dir=cfg.data_dir,
        cache_dir=str(cache),
        batch_size=cfg.train_batch_size,
        max_length=cfg.max_length,
        group_by_length=batching == "dynamic",
        pad_to_max_length=batching == "fixed",
    )
    dm.prepare_data()
    dm.setup()
    return dm.train_dataloader()


def _teacher_step(model: nn.Module):
    def step(batch: dict) -> dict:
        feats = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        model(**feats, labels=batch["labels"]).loss.backward()
        return feats

    return step


def _student_step(student: SiameseStudent):
    def step(batch: dict) -> dict:
        emb = student.encode(batch["sentences"])  # (S, d): each distinct sentence of the batch once
        logits = student.head(emb[batch["a"]], emb[batch["b"]]).squeeze(-1)
        nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"].float()).backward()
        return batch["sentences"]

    return step


def _timed(model: nn.Module, step, loader, steps: int) -> dict:
    """pairs/s over `steps` optimizer steps after one untimed warm-up step; tokens computed and real."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    pairs, computed, real, start = 0, 0, 0, None
    for i, batch in enumerate(itertools.islice(itertools.cycle(loader), steps + 1)):
        if i == 1:
            start = time.perf_counter()
        feats = step(batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 1:
            pairs += len(batch["labels"])
            computed += feats["input_ids"].numel()
            real += int(feats["attention_mask"].sum())
    seconds = time.perf_counter() - start
    return {"pairs_per_s": pairs / seconds, "steps": steps, "pairs": pairs, "tokens_computed": computed,
            "tokens_real": real, "peak_rss_mib_so_far": max_rss_mib()}  # fmt: skip


def train_speed(cfg, task: str, cache: Path) -> list[dict]:
    """Rows per (model, batching), with the speed-up of dynamic over fixed and its FLOP (token) bound."""
    rows = []
    for name, view in (("teacher", "pair"), ("dse student", "sentence")):
        for batching in ("dynamic", "fixed"):
            torch.manual_seed(0)
            if name == "teacher":
                model = AutoModelForSequenceClassification.from_pretrained(cfg.backbone, num_labels=2)
                step = _teacher_step(model)
            else:
                model = dse_student(cfg.backbone)
                step = _student_step(model)
            timed = _timed(model, step, _loader(view, batching, cfg, task, cache), cfg.train_steps)
            rows.append({"model": name, "batching": BATCHING[batching], "task": task, **timed})
        dynamic, fixed = rows[-2], rows[-1]
        dynamic["x_fixed"] = dynamic["pairs_per_s"] / fixed["pairs_per_s"]
        dynamic["token_bound_x"] = (fixed["tokens_computed"] / fixed["pairs"]) / (
            dynamic["tokens_computed"] / dynamic["pairs"]
        )
        dynamic["pct_of_token_bound"] = 100 * dynamic["x_fixed"] / dynamic["token_bound_x"]
    return rows
