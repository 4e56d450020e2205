"""Teacher stage: fit (or reuse) the cross-encoder, evaluate it on dev, export its train-set logits.

A fitted teacher is an artifact of the store (store.py), `<cache_dir>/teachers/<task>/<key>/` with
`model.ckpt`, `logits.pt` and `cross_encoder/` (teacher_export.py), its record in the manifest's meta; the
key hashes everything that changes the teacher (task, teacher config, data checksums, max length, seed,
trainer numerics). A later run with the same provenance reuses it; a fit checkpoints into `<key>.work/` and
resumes from it after a kill. Every run copies the export to `<run dir>/teacher/cross_encoder`.

Where the logits come from is the teacher entry's `source` (conf/teacher/), a `TeacherSource`: a
TeacherModule fitted from `teacher.module` (`ModuleTeacher`, the default of entries without one), a ready
fine-tuned model (`ReadyTeacher`, pipeline/ready.py) or score files (`ScoreFiles`, pipeline/scores.py).
A file or model the config names by path enters the key by content (`TeacherSource.inputs`; a model folder,
the embedded backbone included, through `by_identity`): moving it keeps the key, changing it changes the key.
"""

from __future__ import annotations

import logging
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..logits import KeyedLogits, load_logits, save_logits
from ..models.teacher_module import TeacherModule
from ..options import at_least, teacher_source
from ..results import TeacherResult
from ..store import Artifact, Store, retire_work
from ..utils.io import sha256_file, sha256_json
from ..utils.portable import by_identity
from .common import (
    build_datamodule,
    build_trainer,
    config_dict,
    evaluate_test,
    fit_and_validate,
    val_metrics,
    without_added_defaults,
)
from .distributed import wait_for_rank_zero
from .inference import SplitRows, predict_logits
from .teacher_export import EXPORT, copy_teacher_export, export_teacher

log = logging.getLogger(__name__)
TRAINER_NUMERICS = ("precision", "accumulate_grad_batches", "gradient_clip_val", "limit_train_batches")


def by_content(node, named: dict[str, str]):
    """`node` (a plain config) with every string that names an input replaced by that input's sha256."""
    if isinstance(node, dict):
        return {k: by_content(v, named) for k, v in node.items()}
    if isinstance(node, list):
        return [by_content(v, named) for v in node]
    return named.get(node, node) if isinstance(node, str) else node


def teacher_key(cfg: DictConfig, dm: GluePairDataModule, inputs: list[dict]) -> str:
    """The store key; `inputs` (TeacherSource.inputs) enter it by content, wherever the config names them."""
    # backend: how it labels transfer pairs, not what it is (its logits come from torch)
    teacher = {k: v for k, v in config_dict(cfg.teacher).items() if k not in ("retrain", "backend")}
    teacher = without_added_defaults(teacher, {"both_orders": False})
    task = {k: v for k, v in config_dict(cfg.task).items() if k != "symmetric"}  # gates an option only
    return sha256_json(
        {
            "task": task,
            "teacher": by_identity(by_content(teacher, {i["name"]: i["sha256"] for i in inputs})),
            "data": {s: dm.fingerprint(s) for s in dm.task.splits},
            "max_length": dm.hparams.max_length,
            "seed": cfg.teacher.seed,
            "trainer": {k: cfg.trainer.get(k) for k in TRAINER_NUMERICS},
        }
    )[:16]


def logits_file(split: str) -> str:
    """The teacher artifact's file of a split's logits: `logits.pt` (train), `<split>.logits.pt`."""
    return "logits.pt" if split == "train" else f"{split}.logits.pt"


def teacher_data(cfg: DictConfig, task: TaskSpec, **data) -> GluePairDataModule:
    """The pair view, in the teacher's own batches (`teacher.group_by_length`)."""
    group, both = cfg.teacher.group_by_length, cfg.teacher.get("both_orders", False)
    tokenizer, batch = cfg.teacher.tokenizer, cfg.teacher.batch_size
    return build_datamodule(
        cfg, task, "pair", tokenizer, batch, group_by_length=group, both_orders=both, **data
    )


def teacher_store(cfg: DictConfig, task: TaskSpec) -> Store:
    root = Path(cfg.paths.cache_dir).resolve() / "teachers" / task.name
    return Store(root, "teacher", "delete {path} (or run with teacher.retrain=true) to fit the teacher again")


def fit_or_load(cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, stage_dir: Path, work: Path):
    """Fit a teacher (resuming from `work` if a killed run left a checkpoint there), or load the given
    `teacher.checkpoint`; returns the trainer, the module and its dev metrics. `teacher.max_epochs=0` (a
    ready model used as it is; options.py allows it for no other) builds the module and only evaluates it."""
    trainer, ckpt_cb = build_trainer(cfg, task, stage_dir, cfg.teacher.max_epochs, work / "checkpoints")
    if cfg.teacher.checkpoint:
        log.info("teacher: exporting from given checkpoint %s", cfg.teacher.checkpoint)
        module = TeacherModule.load_from_checkpoint(
            cfg.teacher.checkpoint, map_location="cpu", weights_only=False
        )
        return trainer, module, val_metrics(trainer.validate(module, datamodule=dm))
    module = instantiate(cfg.teacher.module, _partial_=True, _convert_="object")(task=task)
    if cfg.teacher.max_epochs == 0:
        log.info("teacher: teacher.max_epochs=0, evaluating the model as it is")
        return trainer, module, val_metrics(trainer.validate(module, datamodule=dm))
    return trainer, module, fit_and_validate(trainer, ckpt_cb, module, dm, work, "teacher")


def _fit_and_publish(
    cfg: DictConfig,
    task: TaskSpec,
    dm: GluePairDataModule,
    store: Store,
    key: str,
    run_dir: Path,
    check: Callable[[TeacherModule, GluePairDataModule, dict[str, KeyedLogits]], None],
) -> Artifact:
    start, work = time.time(), store.work_dir(key)
    trainer, module, metrics = fit_or_load(cfg, task, dm, run_dir / "teacher", work)
    test = evaluate_test(trainer, module, dm)
    record = {
        "name": cfg.teacher.name,
        "key": key,
        "metrics": metrics,
        **({"test_metrics": test} if test else {}),
        "params": sum(p.numel() for p in module.model.parameters()),
        "train_time_s": round(time.time() - start, 1),
        "data": {s: dm.num_examples(s) for s in task.splits},
    }
    # Every rank predicts its share: train (the student's targets) and dev (what an ensemble is judged by).
    predicted = {split: predict_logits(trainer, module, SplitRows(dm, split)) for split in task.splits}
    check(module, dm, predicted)  # a refused teacher is neither written nor published
    trainer.save_checkpoint(work / "model.ckpt", weights_only=True)  # every rank calls it; rank 0 writes

    def write(tmp: Path) -> dict:
        shutil.move(work / "model.ckpt", tmp / "model.ckpt")
        record["identity"] = sha256_file(tmp / "model.ckpt")  # what the logits' provenance names
        for split, logits in predicted.items():
            provenance = dm.provenance(record["identity"], split)
            path = tmp / logits_file(split)
            save_logits(path, logits.ids, logits.values, provenance)
            load_logits(path, provenance, dm.ids(split))  # verify the round trip before publishing
        export_teacher(task, dm, module, record, tmp / EXPORT)
        return record

    artifact = store.publish(key, write, barrier=lambda: wait_for_rank_zero(trainer, "teacher published"))
    if trainer.is_global_zero:
        retire_work(work, run_dir / "teacher")
    log.info("teacher: published %s", artifact.path)
    return artifact


class TeacherSource:
    """Where a teacher's logits come from: an entry of conf/teacher/ names its class as `source`."""

    predicts = True  # it has a model that can score new pairs (transfer sets, targets=online|folds|ensemble)

    def option_errors(self, cfg: DictConfig, task: TaskSpec) -> list[str]:
        """Its options that cannot work, as `key=value: why` (options.py asks before any work)."""
        return []

    def inputs(self, cfg: DictConfig) -> list[dict]:
        """What it is made from besides the config, by content: [{"option", "name", "sha256"}], "name" as
        the config gives it. The key hashes these instead of the names (TeacherResult.inputs records them)."""
        return []

    def publish(
        self, cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, store: Store, key: str, run_dir: Path
    ) -> Artifact:
        """Build the teacher artifact `key` (logits of every split it has, their provenance naming
        `identity`); its meta: the TeacherResult's record, with `identity` and `data` (rows per split)."""
        raise NotImplementedError


def checkpoint_errors(path: str) -> list[str]:
    """teacher.checkpoint when it is not a file torch.save wrote (a zip archive with a data.pkl): read by
    its header, before any work (loading it would fail later with a message about its bytes)."""
    where = f"teacher.checkpoint={path}"
    if not Path(path).is_file():
        return [f"{where}: no such file"]
    if not zipfile.is_zipfile(path):
        return [f"{where}: not a PyTorch checkpoint (not a torch.save zip archive); give a .ckpt written by "
                "stage=teacher (<run>/teacher/checkpoints or the store's model.ckpt)"]  # fmt: skip
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") for name in archive.namelist()):
            return [f"{where}: a zip archive but not a PyTorch checkpoint (no data.pkl inside)"]
    return []


class ModuleTeacher(TeacherSource):
    """A TeacherModule fitted from `teacher.module` (a backbone with a fresh head), or loaded from
    `teacher.checkpoint`: the source of the entries that name none (minilm, bert_base, bert_large)."""

    def option_errors(self, cfg: DictConfig, task: TaskSpec) -> list[str]:
        if path := cfg.teacher.get("checkpoint"):  # exported from as it is: a checkpoint, by its header
            return checkpoint_errors(path)
        # A teacher is fitted (or reused: its key has these); an unfitted one would be cached and reused.
        return at_least(cfg, "teacher.max_epochs", 1) + at_least(cfg, "teacher.batch_size", 1)

    def inputs(self, cfg: DictConfig) -> list[dict]:
        path = cfg.teacher.get("checkpoint")
        return [{"option": "teacher.checkpoint", "name": path, "sha256": sha256_file(path)}] if path else []

    def check(self, module: TeacherModule, dm: GluePairDataModule, predicted: dict[str, KeyedLogits]) -> None:
        """Refuse the teacher, given its predictions of every split, before it is published."""

    def publish(
        self, cfg: DictConfig, task: TaskSpec, dm: GluePairDataModule, store: Store, key: str, run_dir: Path
    ) -> Artifact:
        return _fit_and_publish(cfg, task, dm, store, key, run_dir, self.check)


def run_teacher(cfg: DictConfig, task: TaskSpec, run_dir: Path) -> tuple[TeacherResult, dict[str, int]]:
    """The teacher's result and the rows per split of the task's data."""
    source = teacher_source(cfg)
    dm = teacher_data(cfg, task, seed=cfg.teacher.seed)
    inputs = source.inputs(cfg)
    key, store = teacher_key(cfg, dm, inputs), teacher_store(cfg, task)
    build = lambda: source.publish(cfg, task, dm, store, key, run_dir)  # noqa: E731
    export = run_dir / "teacher" / EXPORT  # a teacher with a model (not score files) is exported
    use = (lambda a: copy_teacher_export(task, dm, a, export)) if source.predicts else None
    artifact = store.get_or_build(key, build, rebuild=cfg.teacher.retrain, use=use)
    if artifact.reused:
        log.info("teacher: reusing %s (same task, config, inputs, data and seed)", artifact.path)
    record = dict(artifact.meta)
    data = record.pop("data")
    checkpoint = artifact.path / "model.ckpt"  # none for a teacher of score files
    if "identity" not in record:  # published before identities were recorded: its checkpoint's hash
        record["identity"] = sha256_file(checkpoint)
    paths = {
        "checkpoint": str(checkpoint) if checkpoint.is_file() else "",
        "logits": str(artifact.path / "logits.pt"),
        "export": str(export.resolve()) if source.predicts else "",
    }
    return TeacherResult(**record, **paths, inputs=inputs, reused=artifact.reused), data
