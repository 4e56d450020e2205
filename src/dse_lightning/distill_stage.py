"""Distill stage: train a siamese student on gold labels and the teacher's targets; evaluate it on dev.

A student is an artifact of the store (store.py), `<cache_dir>/students/<task>/<key>/` holding its export,
its record in the manifest's meta; the key hashes everything that determines it (teacher key, student,
loss and targets config, data, seed, trainer numerics; a model folder by what it is, `by_identity`). It
trains in `<key>.work/` and resumes from it after a kill. Once published it stays in the store, as a
teacher does: a run with the same key (one that was killed before its results.json, one started beside it,
or a later one) reuses it instead of training again. Its checkpoints move into the run dir of the run that
trained it once results.json is written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from .config import find_config
from .data.datamodule import GluePairDataModule
from .data.student_targets import StudentTargets
from .data.tasks import TaskSpec
from .export import export_student
from .export.card import CardFacts, model_card
from .losses import DistillLoss
from .models.build import build_student
from .pipeline.common import (
    build_datamodule,
    build_trainer,
    card_data,
    config_dict,
    evaluate_test,
    fit_and_validate,
    without_added_defaults,
)
from .pipeline.distributed import wait_for_rank_zero
from .pipeline.graph_teacher import graph_backend
from .pipeline.teacher import TRAINER_NUMERICS
from .results import StudentResult, TeacherResult, relative_degradation
from .store import Artifact, Store, retire_work
from .sweep import job_overrides
from .targets import TargetContext, TargetSource
from .utils.io import locked, sha256_json
from .utils.portable import by_identity

log = logging.getLogger(__name__)


def student_key(cfg: DictConfig, teacher: TeacherResult, dm: GluePairDataModule) -> str:
    """Hash of everything that determines the student (it names the student's store entry and work dir)."""
    paths = ("dir", "hub_dir", "cache_dir", "num_workers", "eval_batch_size")  # where and how fast, not what
    data = without_added_defaults(
        {k: v for k, v in config_dict(cfg.data).items() if k not in paths}, {"holdout": None}
    )
    # A teacher served by a graph labels transfer pairs otherwise: another student (torch: keys as before).
    backend = graph_backend(cfg)
    labelled_by = {} if backend is None else {"teacher_backend": backend.name}
    # The intermediate term, when there is one (none: keys as before): its source by content, not its path.
    matched = {"intermediate": intermediate_spec(cfg)} if cfg.get("intermediate") else {}
    return sha256_json(
        {
            **labelled_by,
            **matched,
            "teacher": teacher.key,
            "student": by_identity(_student_spec(cfg)),
            "distill": _as_float_alpha(config_dict(cfg.distill)),
            "targets": by_identity(  # max_members limits what may be asked; it changes no student
                {
                    k: v
                    for k, v in without_added_defaults(config_dict(cfg.targets), {"siamese": 0}).items()
                    if k != "max_members"
                }
            ),
            "augment": by_identity(
                {
                    k: v
                    for k, v in config_dict(cfg.augment).items()
                    if k not in ("chunk_size", "batch_size", "max_per_gold")
                }
            ),
            "data": {**data, "fingerprints": {s: dm.fingerprint(s) for s in dm.task.splits}},
            "seed": cfg.seed,
            "trainer": {k: cfg.trainer.get(k) for k in TRAINER_NUMERICS},
        }
    )[:16]


def _student_spec(cfg: DictConfig) -> dict:
    """The student's config without `encoder.backbone_config` and `pool_embeddings` at their defaults
    (added later: cached students keep their keys)."""
    spec = config_dict(cfg.student)
    if isinstance(spec.get("encoder"), dict):
        added = {"backbone_config": None, "pool_embeddings": False}
        spec["encoder"] = without_added_defaults(spec["encoder"], added)
    return spec


def intermediate_spec(cfg: DictConfig) -> dict:
    """The intermediate term's config with its source folder named by its weights' sha256."""
    # attention_weight 0 (no attention term) keeps the keys the option had before it could match attention
    return by_identity(without_added_defaults(config_dict(cfg.intermediate), {"attention_weight": 0.0}))


def _as_float_alpha(distill: dict) -> dict:
    """distill.alpha=0 and =0.0 train one student (the table writes 0.0, a command line often 0): one key."""
    alpha = distill.get("alpha")
    if isinstance(alpha, int) and not isinstance(alpha, bool):
        return {**distill, "alpha": float(alpha)}
    return distill


def student_store(cfg: DictConfig, task: TaskSpec) -> Store:
    root = Path(cfg.paths.cache_dir).resolve() / "students" / task.name
    return Store(root, "student", "delete {path} to train the student again")


class DistillStage:
    """One distillation: its config, task, teacher, loss and target source, and where it writes."""

    def __init__(
        self,
        cfg: DictConfig,
        task: TaskSpec,
        teacher: TeacherResult,
        rows: dict[str, int],  # rows per split
        loss: DistillLoss,
        source: TargetSource,
        run_dir: Path,
    ) -> None:
        self.cfg, self.task, self.teacher, self.rows = cfg, task, teacher, rows
        self.loss, self.source, self.run_dir = loss, source, run_dir

    def data(self, **extra) -> GluePairDataModule:
        cfg = self.cfg
        return build_datamodule(
            cfg, self.task, "sentence", cfg.teacher.tokenizer, cfg.student.batch_size, **extra
        )

    def targets(self, probe: GluePairDataModule) -> StudentTargets | None:
        """What the target source gives the student (teacher logits, a transfer set); None at alpha 0."""
        cfg, task = self.cfg, self.task
        context = TargetContext(cfg, task, self.teacher, probe, self.rows, self.run_dir, self.gold_student)
        return self.source.build(context) if self.loss.alpha > 0 else None

    def fit(self, probe: GluePairDataModule, store: Store, key: str) -> Artifact:
        """Train (or resume) the student in its work dir and publish it with its export; its record."""
        cfg, task, work = self.cfg, self.task, store.work_dir(key)
        targets = self.targets(probe)
        # The student starts from the run's seed whatever the source did (fold or ensemble teachers draw too).
        pl.seed_everything(cfg.seed, workers=True)
        dm = self.data(targets=targets)
        student = build_student(cfg.student, task)
        make_module = instantiate(cfg.student.module, _partial_=True, _convert_="object")
        module = make_module(
            task=task,
            student=student,
            loss=self.loss,
            teacher=targets and targets.online,
            intermediate=instantiate(cfg.intermediate) if cfg.get("intermediate") else None,
        )
        trainer, ckpt_cb = build_trainer(
            cfg, task, self.run_dir / "student", cfg.student.max_epochs, work / "checkpoints"
        )
        start = time.time()
        metrics = fit_and_validate(trainer, ckpt_cb, module, dm, work, "student")
        test = evaluate_test(trainer, module, dm)
        source = self.source.describe()
        # Against the teachers the student learned from: an ensemble's own dev metrics, when it gave them.
        against = source.get("metrics") or self.teacher.metrics  # None until an ensemble is built
        record = {
            "name": cfg.student.name,
            "alpha": self.loss.alpha,
            "loss": self.loss.describe(),
            "targets": source,
            "metrics": metrics,
            **({"test_metrics": test} if test else {}),
            "relative_degradation": relative_degradation(against, metrics),
            "params": sum(p.numel() for p in student.parameters()),
            "train_time_s": round(time.time() - start, 1),
            "key": key,
        }

        card = model_card(self.card_facts(dm, record, against))

        def write(tmp: Path) -> dict:
            export_student(tmp / "export", module.student, dm.tokenizer, task, dm.hparams.max_length, card)
            return record

        return store.publish(key, write, barrier=lambda: wait_for_rank_zero(trainer, "student exported"))

    def gold_student(self, seed: int) -> StudentResult:
        """This run's student on the labels alone for `seed` (an ensemble's siamese member,
        targets/siamese.py): distill.alpha=0, augment=none, targets=logits, i.e. the key of that seed's
        `distill.alpha=0` baseline, so a finished one is reused from the store."""
        cfg = self.cfg.copy()
        with open_dict(cfg):
            cfg.seed, cfg.distill.alpha = seed, 0.0
            cfg.augment = OmegaConf.load(find_config("augment", "none"))
            cfg.targets = OmegaConf.load(find_config("targets", "logits"))
        loss, source = instantiate(cfg.distill, kind=self.task.kind), instantiate(cfg.targets)
        pl.seed_everything(seed, workers=True)
        run_dir = self.run_dir / "ensemble" / f"siamese{seed}"
        return DistillStage(cfg, self.task, self.teacher, self.rows, loss, source, run_dir).run()

    def card_facts(self, dm: GluePairDataModule, record: dict, against: dict[str, float]) -> CardFacts:
        return CardFacts(
            task=self.task,
            teacher=self.teacher,
            teacher_metrics=against,
            record=record,
            backbone=self.cfg.student.encoder.get("backbone", self.cfg.student.get("backbone")),
            transformer=self.cfg.student.encoder._target_.endswith("TransformerEncoder"),
            command=job_overrides(),
            data=card_data(dm),
        )

    def run(self) -> StudentResult:
        """The student's result; its export is copied to `<run dir>/student/export`."""
        probe = self.data()
        key, store = student_key(self.cfg, self.teacher, probe), student_store(self.cfg, self.task)
        export = self.run_dir / "student" / "export"
        # The run's copy of the export is made under the store's lock: retire_student waits for it.
        copy_export = lambda artifact: artifact.copy_out("export", export)  # noqa: E731
        artifact = store.get_or_build(key, lambda: self.fit(probe, store, key), use=copy_export)
        if artifact.reused:
            log.info(
                "student: reusing the student finished in %s (same teacher, data, config and seed)",
                artifact.path,
            )
        return StudentResult(**artifact.meta, reused=artifact.reused, export=str(export.resolve()))


def retire_student(cfg: DictConfig, task: TaskSpec, student: StudentResult, run_dir: Path) -> None:
    """After results.json: move the student's checkpoints into the run dir; the student stays published
    (removing it raced a second identical run waiting on its lock, which then trained it again)."""
    store = student_store(cfg, task)
    with locked(store.path(student.key)):
        retire_work(store.work_dir(student.key), run_dir / "student")
