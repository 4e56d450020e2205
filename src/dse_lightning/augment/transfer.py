"""The transfer set as a target source: generated pairs, labelled by the teacher, added to the train rows.

`augment=<name>` wraps the `targets` source: gold rows keep its logits and their labels; the transfer pairs
get the teacher's logits and no gold label, so only the distillation term sees them. Each generator's
labelled pairs are an artifact of the store, `<cache_dir>/transfer/<task>/<key>/` (`pairs.json`, `logits.pt`
with provenance), keyed by the teacher(s), the data and the generator's config: shared by every seed and
student, and by every transfer set that uses that generator (augment=both reuses pairs' and tang's).
The teacher labels them through the one teacher-inference path (pipeline/inference.py) with a Trainer of
the run's `trainer=` (under DDP every process labels its share), in chunks that rank 0 saves to
`<key>.work/`, so a killed run goes on from the last whole chunk. `teacher.backend` (torch by default)
may serve the teacher by a graph of its export instead (pipeline/graph_teacher.py: int8, faster).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import datasets
import pytorch_lightning as pl
import torch
from tqdm.auto import tqdm

from ..logits import KeyedLogits, Provenance, read_logits, save_logits
from ..models.teacher_module import TeacherModule
from ..pipeline.common import build_predictor
from ..pipeline.distributed import wait_for_rank_zero
from ..pipeline.graph_teacher import graph_backend, graph_teacher, served_metrics
from ..pipeline.inference import PairRows, predict_logits
from ..results import TeacherResult
from ..scoring.corpus import read_stream
from ..store import Store
from ..targets import siamese
from ..targets.base import StudentTargets, TargetContext, TargetSource
from ..utils.io import atomic_path, sha256_file, sha256_json
from .generators import Pair, PairGenerator, Sources

log = logging.getLogger(__name__)


class NoTransfer(TargetSource):
    """`augment=none`: the gold pairs only; the wrapped source as it is."""

    def __init__(self, base: TargetSource) -> None:
        self.base = base
        self.name, self.provides_logits = base.name, base.provides_logits

    def check(self, cfg) -> None:
        self.base.check(cfg)

    def describe(self) -> dict:
        return self.base.describe()

    def build(self, ctx: TargetContext) -> StudentTargets:
        return self.base.build(ctx)


class TransferSet(NoTransfer):
    needs_teacher_model = True  # the teacher labels the new pairs

    def __init__(
        self,
        base: TargetSource,
        generators: dict[str, PairGenerator],  # by name: config groups merge them (augment=both)
        name: str = "transfer",
        corpus: str | None = None,  # more sentences to pair, one per line (dev sentences are dropped)
        seed: int = 0,  # the generators' (not the run's: one transfer set serves every seed)
        chunk_size: int = 2048,  # pairs labelled between two saves
        batch_size: int = 64,
        max_per_gold: float = 32.0,  # a limit on what a config asks for (not in the key: it changes nothing)
    ) -> None:
        super().__init__(base)
        if not generators:
            raise ValueError(f"augment={name}: no generators")
        self.generators, self.augment, self.corpus, self.seed = list(generators.values()), name, corpus, seed
        self.chunk_size, self.batch_size, self.size = chunk_size, batch_size, None
        self.served: list[dict] = []  # a graph labeller's dev metrics beside fp32's (teacher.backend)
        self._labelling: tuple | None = None  # (predictor, labellers, served): _labellers
        self.named, self.max_per_gold = generators, max_per_gold

    def check(self, cfg) -> None:
        super().check(cfg)
        if not self.base.provides_logits:
            raise ValueError(
                f"augment={self.augment} extends exported logits: use targets=logits or targets=folds"
            )
        for name, generator in self.named.items():  # a typo like 1e9 would generate until killed
            if getattr(generator, "per_gold", 0) > self.max_per_gold:
                raise ValueError(
                    f"augment.generators.{name}.per_gold={generator.per_gold}: over augment.max_per_gold="
                    f"{self.max_per_gold:g} new pairs per gold pair (each one labelled by the teacher); "
                    "raise augment.max_per_gold to lift the limit"
                )
        if self.corpus:  # missing, or without a sentence (it would add nothing): refused before any work
            next(read_stream(self.corpus, "augment.corpus="))
        if float(cfg.distill.alpha) == 0:
            raise ValueError(
                f"augment={self.augment}: its pairs have no gold label; "
                "they teach only with distill.alpha > 0"
            )

    def describe(self) -> dict:
        served = {"teacher_backend": self.served} if self.served else {}
        return {**self.base.describe(), "augment": self.augment, "transfer_pairs": self.size, **served}

    def key(self, ctx: TargetContext, generator: PairGenerator) -> str:
        """What one generator's labelled pairs depend on: its config, the data, the corpus, the labellers."""
        corpus = sha256_file(self.corpus) if self.corpus else None
        data = {s: ctx.data.fingerprint(s) for s in ctx.task.splits}  # train: the pool; the rest: banned
        teachers = [t.key for t in self.base.labellers(ctx)]
        spec = {"generator": generator.describe(), "corpus": corpus, "seed": self.seed, "data": data}
        if (backend := graph_backend(ctx.cfg)) is not None:  # other labels; torch's keys stay as they were
            spec["teacher_backend"] = backend.name
        return sha256_json({"teacher": teachers[0] if len(teachers) == 1 else teachers, **spec})[:16]

    def build(self, ctx: TargetContext) -> StudentTargets:
        gold = self.base.build(ctx)
        store = Store(Path(ctx.cfg.paths.cache_dir).resolve() / "transfer" / ctx.task.name, "transfer set")
        keys = [self.key(ctx, g) for g in self.generators]
        self._labelling = None  # made by the first generator that labels, shared by the others
        parts = [self._labelled(ctx, store, key, g) for key, g in zip(keys, self.generators, strict=True)]
        pairs = [pair for _, part in parts for pair in part]
        if not pairs:
            raise ValueError(
                f"augment={self.augment}: the generators made no pairs from {ctx.task.name} train"
            )
        self.size = len(pairs)
        labelled = [logits.map(ctx.task.kind.student_targets) for logits, _ in parts]
        logits = functools.reduce(KeyedLogits.cat, labelled, gold.logits)
        rows = {
            "id": logits.ids[-len(pairs) :],
            "sentence1": [a for a, _ in pairs],
            "sentence2": [b for _, b in pairs],
        }
        extra = datasets.Dataset.from_dict(rows)
        return StudentTargets(logits=logits, extra_rows=extra, extra_key=sha256_json(keys)[:16])

    def _labelled(self, ctx: TargetContext, store: Store, key: str, generator: PairGenerator):
        """One generator's pairs and their logits: from the store, or generated and labelled now."""
        build = lambda: self._label(ctx, store, key, generator)  # noqa: E731
        artifact = store.get_or_build(key, build)
        if artifact.reused:
            log.info(
                "transfer set: reusing %s (%d %s pairs)",
                artifact.path,
                artifact.meta["pairs"],
                generator.name,
            )
        pairs = [tuple(p) for p in json.loads((artifact.path / "pairs.json").read_text())]
        self.served = artifact.meta.get("served_by", self.served)  # the same labellers for every generator
        return read_logits(artifact.path / "logits.pt", self._provenance(ctx, key)), pairs

    def _provenance(self, ctx: TargetContext, key: str) -> Provenance:
        """The train-logits provenance, for these pairs and their labellers (by their identities)."""
        teachers = sha256_json([t.identity for t in self.base.labellers(ctx)])
        return replace(ctx.data.provenance(teachers), split=f"transfer-{key}")

    def generate(self, ctx: TargetContext, generator: PairGenerator) -> list[Pair]:
        """The generator's pairs from the train sentences (and the corpus); never a dev sentence."""
        train, dev = ctx.data.raw("train"), set()
        for split in ctx.task.eval_splits:
            dev |= {s for col in ("sentence1", "sentence2") for s in ctx.data.raw(split)[col]}
        # A train pair with a sentence that is also a dev one is left out: nothing comes from a dev sentence.
        gold = [p for p in zip(train["sentence1"], train["sentence2"], strict=True) if not set(p) & dev]
        pool = [s for pair in gold for s in pair]
        if self.corpus:
            pool += self._corpus()
        pool = [s for s in dict.fromkeys(pool) if s not in dev]
        rng = random.Random(f"{self.seed}:{generator.name}")  # a str seeds deterministically
        pairs = generator.pairs(Sources(gold, pool, ctx.data.tokenizer.mask_token, rng, frozenset(dev)))
        log.info(
            "transfer set: %d %s pairs from %d gold pairs and %d sentences",
            len(pairs),
            generator.name,
            len(gold),
            len(pool),
        )
        return pairs

    def _corpus(self) -> list[str]:
        # The candidates' reader: a bad byte's line, and an error for a file without sentences (one that
        # would silently add nothing to the pool).
        return list(read_stream(self.corpus, "augment.corpus="))

    def _label(self, ctx: TargetContext, store: Store, key: str, generator: PairGenerator):
        """Label the generator's pairs on every process of the run's `trainer=`; rank 0 writes the chunks
        and the artifact while the others wait."""
        pairs, work = self.generate(ctx, generator), store.work_dir(key)
        ids = [f"{generator.name}-{key}-{i:07d}" for i in range(len(pairs))]
        trainer, _, served = self._labellers(ctx)
        logits = self._teacher_logits(ctx, pairs, ids, work)

        def write(tmp: Path) -> dict:
            (tmp / "pairs.json").write_text(json.dumps(pairs, ensure_ascii=False))
            save_logits(tmp / "logits.pt", ids, logits, self._provenance(ctx, key))
            teachers = [t.key for t in self.base.labellers(ctx)]
            by = {"served_by": served} if served else {}  # torch: the teacher's own dev metrics hold
            return {"pairs": len(pairs), "teachers": teachers, "generator": generator.describe(), **by}

        artifact = store.publish(
            key, write, barrier=lambda: wait_for_rank_zero(trainer, "transfer set published")
        )
        if trainer.is_global_zero:
            shutil.rmtree(work, ignore_errors=True)
        return artifact

    def _labellers(self, ctx: TargetContext) -> tuple[pl.Trainer, list, list[dict]]:
        """The predictor, the labellers and what served them, made once per build: with two generators
        (augment=both) the second does not load the teacher's checkpoint, compile its graph or judge it on
        dev again."""
        if self._labelling is None:
            trainer, served = build_predictor(ctx.cfg, ctx.run_dir / "transfer"), []
            modules = [labeller(ctx, trainer, t, served) for t in self.base.labellers(ctx)]
            self._labelling = (trainer, modules, served)
        return self._labelling

    def _teacher_logits(
        self, ctx: TargetContext, pairs: list[Pair], ids: list[str], work: Path
    ) -> torch.Tensor:
        """(N, C) logits of the pairs, a chunk at a time (chunks a killed run saved are reused)."""
        trainer = self._labellers(ctx)[0]
        chunks = []
        starts = range(0, len(pairs), self.chunk_size)
        bar = f"teacher labels {len(pairs)} transfer pairs"
        for start in tqdm(starts, desc=bar, unit="chunk", disable=not trainer.is_global_zero):
            path = work / f"chunk{start // self.chunk_size:05d}.pt"
            # Every process decides alike: a chunk is saved (by rank 0) only once all have predicted it.
            if not path.is_file():
                end = start + self.chunk_size
                part = self._label_chunk(ctx, pairs[start:end], ids[start:end])
                if trainer.is_global_zero:
                    with atomic_path(path) as tmp:
                        torch.save(part, tmp)
                wait_for_rank_zero(trainer, "transfer chunk saved")
            chunks.append(torch.load(path, weights_only=True))
        return torch.cat(chunks)

    def _label_chunk(self, ctx: TargetContext, pairs: list[Pair], ids: list[str]) -> torch.Tensor:
        """(n, C) logits of one chunk's pairs, averaged over the labellers (the teacher, or an ensemble)."""
        modules = self._labellers(ctx)[1]
        both = ctx.cfg.teacher.get("both_orders", False)
        rows = PairRows(
            pairs, ids, ctx.data.tokenizer, ctx.data.hparams.max_length, self.batch_size, both_orders=both
        )
        return torch.stack([label(rows) for label in modules]).mean(0)


def labeller(
    ctx: TargetContext, trainer: pl.Trainer, teacher: TeacherResult, served: list[dict]
) -> Callable[[PairRows], torch.Tensor]:
    """How a labeller scores new pairs (N, C), in the rows' order: a cross-encoder through the one inference
    path on the run's trainer (served by `teacher.backend`: torch, or a graph of its export), or a siamese
    ensemble member (no checkpoint) through its student export. A graph is judged on dev first (`served`
    gains its metrics beside the fp32 teacher's)."""
    if not teacher.checkpoint and teacher.export:  # a siamese member: the export of a student
        return lambda rows: siamese.label(teacher, ctx.task, rows)
    module = TeacherModule.load_from_checkpoint(teacher.checkpoint, map_location="cpu", weights_only=False)
    if (backend := graph_backend(ctx.cfg)) is not None:
        module = graph_teacher(ctx.cfg, ctx.data, trainer, teacher, module, backend)
        served.append(
            {"backend": backend.name, **served_metrics(ctx.cfg, ctx.data, trainer, module, teacher)}
        )
    return lambda rows: predict_logits(trainer, module, rows).values
