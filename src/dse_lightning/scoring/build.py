"""Build an embedding store through Lightning's predict loop: any trainer (cpu, ddp_cpu, gpu, ddp).

    python -m dse_lightning.build_store export=<run>/student/export candidates=corpus.txt \\
        store=stores/corpus trainer=ddp_cpu dtype=float16

The candidate file is read as a stream (its distinct non-blank lines, first occurrence order: the
store's row order) and cut into shards of `shard_size` rows. Shard s belongs to rank s mod world_size,
which encodes it in length-sorted batches and publishes it as an artifact of its own under
`<store>.work/shards/`, so a killed build resumes by shard: the finished ones are verified and skipped.
When every rank is done, rank 0 joins the shards in row order into the store (float32, float16 or int8)
and removes the work folder; the store's manifest is written last.

Memory: one shard of sentences per rank while encoding; the join holds the N rows in the store's dtype
and one shard's float rows (compact dtypes are stored shard by shard: compact.Candidates.encode_blocks).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, IterableDataset

from ..embeddings.ann import Search
from ..embeddings.compact import Candidates, check_dtype
from ..embeddings.scorers import cosine_index
from ..export import load_student
from ..export.backends import DEFAULT
from ..store import publish, verify
from ..utils.io import CorruptArtifactError, sha256_file
from .corpus import distinct, read_stream
from .store import EmbeddingStore, student_identity

log = logging.getLogger(__name__)
SHARD = "store shard"
SHARD_SIZE = 65536  # rows per shard by default: the unit of work per rank and of resuming


def shards(candidates: Path, size: int) -> Iterator[tuple[int, list[str]]]:
    """(shard number, its distinct sentences), streaming the file once."""
    block: list[str] = []
    number = 0
    for line in distinct(read_stream(candidates, "candidates")):
        block.append(line)
        if len(block) == size:
            yield number, block
            block, number = [], number + 1
    if block:
        yield number, block


class ShardBatches(IterableDataset):
    """This rank's unfinished shards as length-sorted batches: {"shard", "rows", "sentences", "last"}.
    After a full pass `count` holds how many shards the corpus has."""

    def __init__(self, candidates: Path, plan: ShardPlan, batch_size: int, rank: int, world: int) -> None:
        self.candidates, self.plan, self.batch_size = candidates, plan, batch_size
        self.rank, self.world, self.count = rank, world, None

    def __iter__(self):
        done, count = self.plan.finished(), 0
        for number, sentences in shards(self.candidates, self.plan.size):
            count = number + 1
            if number % self.world != self.rank or number in done:
                continue
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # little padding
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                last = start + self.batch_size >= len(order)
                yield {"shard": number, "rows": rows, "sentences": [sentences[i] for i in rows], "last": last,
                       "all": sentences if last else None}  # fmt: skip
        self.count = count


class ShardPlan:
    """Where the shards of one build live, and what makes a finished shard valid for this build."""

    def __init__(self, store: Path, size: int, meta: dict) -> None:
        if size < 1:
            raise ValueError(f"shard_size must be >= 1, got {size}")
        self.work, self.size, self.meta = Path(f"{store}.work"), size, {**meta, "shard_size": size}
        self.verified: set[int] = set()  # shards whose files were hashed (finished() or written here)

    def path(self, number: int) -> Path:
        return self.work / "shards" / f"{number:06d}"

    def finished(self) -> set[int]:
        """Shards already published by an earlier (killed) build; one of another build is refused."""
        done = set()
        for folder in sorted((self.work / "shards").glob("[0-9]" * 6)):
            try:
                meta = verify(folder, SHARD, "")
            except CorruptArtifactError:
                continue  # a shard whose write was killed: encoded again
            if {k: meta.get(k) for k in self.meta} != self.meta:
                raise ValueError(
                    f"{folder}: a shard of another build (other student, candidates or shard_size); "
                    f"delete {self.work} to start this one"
                )
            done.add(int(folder.name))
        self.verified |= done
        return done

    def write(self, number: int, sentences: list[str], embeddings: torch.Tensor) -> None:
        def files(tmp: Path) -> dict:
            save_file({"embeddings": embeddings.contiguous()}, tmp / "embeddings.safetensors")
            (tmp / "sentences.json").write_text(json.dumps(sentences, ensure_ascii=False))
            return {**self.meta, "shard": number, "n": len(sentences)}

        publish(self.path(number), SHARD, files, writer=True)
        self.verified.add(number)

    def join(self, count: int, dtype: str) -> tuple[Candidates, list[str]]:
        """Every shard's rows in order, stored as `dtype`; a missing or corrupt one is an error naming it."""
        for number in set(range(count)) - self.verified:  # written by other ranks: hashed once, here
            verify(self.path(number), SHARD, f"delete {self.work} and build again")
        self.verified |= set(range(count))

        def blocks() -> Iterator[torch.Tensor]:
            for number in range(count):
                yield load_file(self.path(number) / "embeddings.safetensors")["embeddings"]

        texts = (json.loads((self.path(n) / "sentences.json").read_text()) for n in range(count))
        sentences = [s for block in texts for s in block]
        return Candidates.encode_blocks(blocks, dtype), sentences


class EncodeModule(pl.LightningModule):
    """The exported student's encoder in Lightning's predict loop (loaded on each rank's device)."""

    def __init__(self, export: str | Path, backend: str = DEFAULT) -> None:
        super().__init__()
        self.export, self.backend, self.student = Path(export), backend, None

    def on_predict_start(self) -> None:
        # the rank's device: the torch encoder runs there, the graph backends on the CPU
        self.student = load_student(self.export, self.backend, str(self.device))

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.student.encode_batch(batch["sentences"]).float().cpu()  # (B, d)


class ShardWriter(BasePredictionWriter):
    """Collects a shard's batches and publishes the shard when its last batch is predicted."""

    def __init__(self, plan: ShardPlan) -> None:
        super().__init__(write_interval="batch")
        self.plan, self.parts = plan, {}

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dl_idx=0):
        parts = self.parts.setdefault(batch["shard"], [])
        parts.append((batch["rows"], prediction))
        if batch["last"]:
            rows = torch.tensor([r for rows, _ in parts for r in rows])
            embeddings = torch.empty(len(rows), prediction.shape[1])
            embeddings[rows] = torch.cat([p for _, p in parts])  # back to the shard's row order
            self.plan.write(batch["shard"], batch["all"], embeddings)
            del self.parts[batch["shard"]]


def plan_for(
    export: str | Path, candidates: str | Path, store: str | Path, backend: str, size: int
) -> ShardPlan:
    # The file's hash (cheap beside encoding it): a resumed build must read the same candidates.
    meta = {"student": student_identity(export, backend), "candidates_sha256": sha256_file(candidates)}
    return ShardPlan(Path(store), size, meta)


def default_trainer(plan: ShardPlan, progress: bool = True) -> pl.Trainer:
    """One process on the CPU: what `open_index` uses when it builds a store."""
    return pl.Trainer(
        accelerator="cpu", devices=1, logger=False, callbacks=[ShardWriter(plan)], enable_checkpointing=False,
        enable_model_summary=False, use_distributed_sampler=False, enable_progress_bar=progress,
    )  # fmt: skip


def build_store(
    trainer: pl.Trainer,
    plan: ShardPlan,
    export: str | Path,
    candidates: str | Path,
    store: str | Path,
    dtype: str = "float32",
    backend: str = DEFAULT,
    batch_size: int = 64,
    index: Search | None = None,
) -> EmbeddingStore | None:
    """Encode `candidates` with the student at `export` into the store at `store` (see the module doc);
    the published store on rank 0 (None on the others). `trainer` must carry `ShardWriter(plan)` among
    its callbacks. index: a faiss index over the normalised rows built and saved with the store (what
    `--search` then loads instead of building)."""
    check_dtype(dtype)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    next(read_stream(candidates, "candidates"))  # a missing or empty file fails here, before any work
    if Path(store).exists() and not Path(store).is_dir():
        raise NotADirectoryError(f"store {store}: a file, not a folder; give a folder path for the store")
    if index is not None and index.nlist is not None:  # counted (cheap beside encoding) to check nlist now
        index.check_rows(sum(1 for _ in distinct(read_stream(candidates, "candidates"))))
    data = ShardBatches(Path(candidates), plan, batch_size, trainer.global_rank, trainer.world_size)
    module = EncodeModule(export, backend)
    with warnings.catch_warnings():  # the batches carry their own row numbers; Lightning's are not needed
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        trainer.predict(module, dataloaders=DataLoader(data, batch_size=None), return_predictions=False)
    trainer.strategy.barrier("store shards")
    built = None
    if trainer.is_global_zero:
        rows, sentences = plan.join(data.count, dtype)
        built = EmbeddingStore(rows, sentences, plan.meta["student"])
        built.save(store, indexes=[cosine_index(built.candidates, index)] if index else [])
        shutil.rmtree(plan.work, ignore_errors=True)
        log.info("built %s: %d candidates in %d shard(s), %s", store, len(sentences), data.count, dtype)
    trainer.strategy.barrier("store published")
    return built
