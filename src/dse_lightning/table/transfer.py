"""Transfer evaluation (the paper's "universal sentence representation" claim): zero-shot STS.

Each sentence of the STS-B dev pairs is embedded alone; the cosine of the two embeddings is correlated
(Spearman) with the gold similarity. No training on STS-B: the backbone before distillation (mean
pooling, the usual sentence-embedding baseline) against the pooled embedding of each distilled `dse`
student (which saw STS-B only if it was distilled on it: the table says which task each was trained on).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchmetrics.functional import spearman_corrcoef

from ..config import load_task
from ..data.sources import resolve_source
from ..embeddings.encode import EncodeFn, encode_corpus, mean_pooled_encoder
from ..export.student_io import load_student
from ..utils.io import write_json
from ..utils.portable import portable, resolve_portable
from .cells import is_done, result
from .profile import Profile

log = logging.getLogger(__name__)


def sts_pairs(
    task_name: str, split: str, data_dir: str | None = None
) -> tuple[list[str], list[str], torch.Tensor]:
    task = load_task(task_name)
    if task.kind.class_logits:
        raise ValueError(f"transfer.task={task_name}: zero-shot STS needs a similarity (regression) task")
    rows = resolve_source(task, data_dir).load(split)
    return list(rows["sentence1"]), list(rows["sentence2"]), torch.tensor(rows["label"], dtype=torch.float)


def cosine_spearman(encode_fn: EncodeFn, a: list[str], b: list[str], gold: torch.Tensor) -> float:
    emb = encode_corpus(encode_fn, a + b, progress=False)
    cos = torch.nn.functional.cosine_similarity(emb[: len(a)], emb[len(a) :])
    return float(spearman_corrcoef(cos, gold))


def _evaluate(path: Path, what: dict, encode_fn: EncodeFn, pairs) -> None:
    spearman = cosine_spearman(encode_fn, *pairs)
    write_json(path, portable({**what, "spearman": spearman, "pairs": len(pairs[0])}, path.parent))
    log.info("transfer: %s -> Spearman %.4f", what["model"], spearman)


def run_transfer(profile: Profile, out: Path) -> None:
    """transfer.json next to each finished dse cell's results.json, and cells/backbone/transfer.json."""
    if not profile.transfer:
        return
    task, split = profile.transfer["task"], profile.transfer.get("split", "dev")
    pairs = sts_pairs(task, split, profile.transfer.get("data_dir"))
    what = {"task": task, "split": split, "metric": "spearman of cosine (zero-shot)"}
    dse_cells = [
        c for c in profile.student_cells() if c.student == "dse" and c.alpha and is_done(c.dir(out))
    ]  # the distilled ones
    for cell in dse_cells:
        path = cell.dir(out) / "transfer.json"
        export = cell.dir(out) / "student" / "export"
        if path.is_file() or not export.is_dir():
            continue
        _evaluate(path, {**what, "model": f"{cell.task}/{cell.name}"}, load_student(export).encode, pairs)
    backbone_path = out / "cells" / "backbone" / "transfer.json"
    if dse_cells and not backbone_path.is_file():
        cell_dir = dse_cells[0].dir(out)  # its record names the backbone portably: found here again
        backbone = resolve_portable(result(cell_dir).config["student"]["backbone"], cell_dir)
        _evaluate(
            backbone_path,
            {**what, "model": "backbone", "backbone": backbone},
            mean_pooled_encoder(backbone),
            pairs,
        )
