"""Gold-trained siamese students as ensemble members (`targets=ensemble targets.siamese=k`).

On STS-B the siamese student trained on the labels alone beats the cross-encoder it is meant to learn from
(experiments/paper_table/cpu): as a member of the teacher ensemble it adds what the cross-encoder lacks. A
member is the run's own student config at distill.alpha=0 (no transfer set, `targets=logits`: the key of
the labels-only baseline of that seed, so a finished baseline is reused from the store), fitted by the
distill stage above this package (`TargetContext.gold_student`). Its export scores the train and eval rows;
those logits, in the teacher's format, are an artifact of their own store and the member reads as a
`TeacherResult` whose `export` is the student's (no checkpoint: `label` scores new pairs with the export).
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import torch
from safetensors import safe_open

from ..export.student_io import load_student, verify_export
from ..logits import load_logits, save_logits
from ..pipeline.inference import PairRows
from ..pipeline.teacher import logits_file
from ..results import TeacherResult
from ..store import Artifact, Store
from ..utils.io import sha256_json
from ..utils.portable import weight_hashes
from .base import TargetContext

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)  # a transfer set asks for a member's logits chunk by chunk
def _loaded(export: str):
    return load_student(export)


def pair_logits(export: str, task, first: list[str], second: list[str]) -> torch.Tensor:
    """(N, num_labels) teacher-format logits of the student export's head on the pairs."""
    return task.kind.teacher_logits(_loaded(export).logits(first, second).float())


def label(member: TeacherResult, task, rows: PairRows) -> torch.Tensor:
    """A siamese member's logits of new pairs (a transfer set's), in `rows.ids` order."""
    first, second = zip(*rows.pairs, strict=True) if rows.pairs else ((), ())
    return pair_logits(member.export, task, list(first), list(second))


def _store(ctx: TargetContext) -> Store:
    return Store(Path(ctx.cfg.paths.cache_dir).resolve() / "siamese" / ctx.task.name, "siamese member logits")


def _publish(ctx: TargetContext, key: str, export: str, store: Store) -> Artifact:
    """The export's logits of every split of the run's data, stored under `key` (reused when there)."""
    identity = f"siamese-{key}"  # what its logits' provenance names (TeacherResult.identity)

    def write(tmp: Path) -> dict:
        for split in ctx.task.splits:
            rows = ctx.data.raw(split)
            values = pair_logits(export, ctx.task, list(rows["sentence1"]), list(rows["sentence2"]))
            provenance = ctx.data.provenance(identity, split)
            save_logits(tmp / logits_file(split), list(rows["id"]), values, provenance)
            load_logits(tmp / logits_file(split), provenance, list(rows["id"]))  # the round trip
        return {"identity": identity, "student": key}

    return store.get_or_build(key, lambda: store.publish(key, write))


def siamese_member(ctx: TargetContext, seed: int) -> TeacherResult:
    """The labels-only student of `seed` (fitted, or reused from the store) as an ensemble member."""
    if ctx.gold_student is None:
        raise ValueError("targets.siamese: gold-trained members are fitted by the distill stage only")
    student = ctx.gold_student(seed)
    artifact = _publish(ctx, student.key, student.export, _store(ctx))
    log.info("ensemble: siamese member %s (seed %d), dev %s", student.key, seed, student.metrics)
    return TeacherResult(
        name=f"{student.name} (gold, alpha 0)",
        key=student.key,
        metrics=student.metrics,
        params=student.params,
        logits=str(artifact.path / "logits.pt"),
        export=student.export,
        identity=artifact.meta["identity"],
    )


def export_member(ctx: TargetContext, export: str, option: str) -> TeacherResult:
    """A student export made elsewhere (a deeper distilled student, for a shallower one) as a member: its
    logits of the run's data, stored under the export's weights and the data (its path names nothing)."""
    spec = verify_export(export, remedy=f"{option}: give a student export folder (<run>/student/export)")
    if "tasks" in spec:  # a multi-task export's manifest names its tasks, not one task
        raise ValueError(
            f"{option}{export}: a multi-task export (tasks {', '.join(spec['tasks'])}); a logit source is "
            "one task's student export (<run>/student/export of a single-task run)"
        )
    if spec.get("task") != ctx.task.name:
        raise ValueError(f"{option}{export}: a {spec.get('task')} student, not a {ctx.task.name} one")
    data, weights = {s: ctx.data.fingerprint(s) for s in ctx.task.splits}, weight_hashes(export)
    key = sha256_json({"export": weights, "data": data})[:16]
    artifact = _publish(ctx, key, export, _store(ctx))
    log.info("student export %s as a logit source (key %s)", export, key)
    return TeacherResult(
        name=f"student export {key}",
        key=key,
        metrics={},  # filled by the caller from its dev logits
        params=_params(export),
        logits=str(artifact.path / "logits.pt"),
        export=export,
        identity=artifact.meta["identity"],
        inputs=[{"option": option, "name": export, "sha256": weights}],
    )


def _params(export: str) -> int:
    """Parameters of an export's encoder and head (their safetensors), without building the model."""
    total = 0
    for file in sorted(Path(export).glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return total
