"""Multi-task distillation (`tasks=glue_pairs`): one siamese encoder, a head per task, one export for all.

Each task is prepared exactly as a one-task run prepares it (its own config with `task` set, options checked,
its teacher fitted or reused from the store, its target source and transfer set: distill_stage.DistillStage),
then one MultiTaskDistillModule trains on batches drawn from the tasks (data/multitask.py). The student is
an artifact of the store, `<cache_dir>/students/multitask/<key>/`, keyed by each task's one-task student
key (teacher, data, student config, targets, seed) and the sampling rule; it holds one export with every
head, which one embedding store serves (`score --task`).

Records (train.py): `<run>/<task>/results.json` per task (a RunResult: that task's teacher, the shared
student's metrics on it, its degradation against its teacher) and `<run>/results.json`, a section per task
(results.MultiTaskResult).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from .config import find_config
from .data.multitask import RULES, MultiTaskDataModule
from .data.tasks import TaskSpec
from .distill_stage import DistillStage, student_key
from .export import export_student
from .export.card import multitask_card
from .models.build import build_multitask_student
from .models.multitask_module import Monitored
from .options import check_options, refuse
from .pipeline.common import build_trainer, fit_and_validate
from .pipeline.distributed import wait_for_rank_zero
from .pipeline.graph_teacher import graph_backend
from .pipeline.teacher import run_teacher
from .results import StudentResult, relative_degradation
from .store import Artifact, Store, retire_work
from .utils.io import locked, sha256_json

log = logging.getLogger(__name__)
MODULE = "dse_lightning.models.multitask_module.MultiTaskDistillModule"


def task_config(cfg: DictConfig, name: str) -> DictConfig:
    """The run's config as `task=<name>` would compose it (the task's file; the other groups as given)."""
    one = cfg.copy()
    with open_dict(one):
        one.task = OmegaConf.load(find_config("task", name))
        one.pop("tasks", None)
    return one


def multitask_errors(cfg: DictConfig) -> list[str]:
    """What a multi-task run cannot do (the tasks' own options are checked as one-task runs check them)."""
    names, errors = list(cfg.tasks.names), []
    if len(names) < 2 or len(set(names)) != len(names):
        errors.append(f"tasks.names={names}: two or more distinct task names")
    if cfg.stage != "all":
        errors.append(f"stage={cfg.stage}: a multi-task run fits its teachers and its student (stage=all)")
    if not str(cfg.targets._target_).endswith("ExportedLogits"):
        errors.append(f"targets={cfg.targets._target_}: a multi-task student learns from exported logits")
    if cfg.get("intermediate"):
        errors.append("intermediate: not with a multi-task student (one-task students only)")
    if cfg.tasks.sampling not in RULES:
        errors.append(f"tasks.sampling={cfg.tasks.sampling}: not one of {list(RULES)}")
    if cfg.tasks.sampling == "temperature" and not cfg.tasks.temperature > 0:
        errors.append(f"tasks.temperature={cfg.tasks.temperature}: must be above 0")
    return errors


def prepare(cfg: DictConfig, run_dir: Path) -> dict[str, DistillStage]:
    """Every task's options checked first (nothing runs on a bad one), then each teacher fitted or reused:
    a task's one-task distill stage, teacher included."""
    refuse(multitask_errors(cfg))
    built = {}
    for name in cfg.tasks.names:
        one = task_config(cfg, name)
        task = TaskSpec.from_config(one.task)
        check_options(one, task)
        graph_backend(one)
        source = instantiate(one.augment, base=instantiate(one.targets))
        source.check(one)
        built[name] = (one, task, instantiate(one.distill, kind=task.kind), source)
    parts = {}
    for name, (one, task, loss, source) in built.items():
        pl.seed_everything(one.teacher.seed, workers=True)
        teacher, rows = run_teacher(one, task, run_dir / name)
        parts[name] = DistillStage(one, task, teacher, rows, loss, source, run_dir / name)
    return parts


def multitask_store(cfg: DictConfig) -> Store:
    root = Path(cfg.paths.cache_dir).resolve() / "students" / "multitask"
    return Store(root, "student", "delete {path} to train the multi-task student again")


def strategy_for_heads(cfg: DictConfig) -> DictConfig:
    """Under DDP, each step trains one task's head and leaves the others without gradients: DDP is told so
    (find_unused_parameters), and their gradients stay None, as in one process."""
    cfg = cfg.copy()
    strategy = cfg.trainer.get("strategy")
    with open_dict(cfg):
        if isinstance(strategy, DictConfig) and str(strategy.get("_target_", "")).endswith("DDPStrategy"):
            strategy.find_unused_parameters = True
        elif strategy == "ddp":
            cfg.trainer.strategy = "ddp_find_unused_parameters_true"
    return cfg


class MultiTaskStage:
    def __init__(self, cfg: DictConfig, parts: dict[str, DistillStage], run_dir: Path) -> None:
        self.cfg, self.parts, self.run_dir = cfg, parts, run_dir
        self.tasks = {name: part.task for name, part in parts.items()}

    def key(self, probes: dict) -> str:
        sampling = OmegaConf.to_container(self.cfg.tasks, resolve=True)
        sampling.pop("names")
        one_task = {n: student_key(p.cfg, p.teacher, probes[n]) for n, p in self.parts.items()}
        return sha256_json({"tasks": one_task, "sampling": sampling})[:16]

    def fit(self, probes: dict, store: Store, key: str) -> Artifact:
        cfg, work = self.cfg, store.work_dir(key)
        targets = {n: p.targets(probes[n]) for n, p in self.parts.items()}
        pl.seed_everything(cfg.seed, workers=True)
        data = {n: p.data(targets=targets[n]) for n, p in self.parts.items()}
        dm = MultiTaskDataModule(data, cfg.tasks.sampling, cfg.seed, cfg.tasks.temperature)
        student = build_multitask_student(cfg.student, self.tasks)
        node = cfg.student.module.copy()
        with open_dict(node):
            node._target_ = MODULE
        losses = {n: p.loss for n, p in self.parts.items()}
        module = instantiate(node, _partial_=True, _convert_="object")(
            tasks=self.tasks, student=student, losses=losses
        )
        trainer, ckpt_cb = build_trainer(
            strategy_for_heads(cfg),
            Monitored(),
            self.run_dir / "student",
            cfg.student.max_epochs,
            work / "checkpoints",
        )
        start = time.time()
        metrics = fit_and_validate(trainer, ckpt_cb, module, dm, work, "student")
        record = self.record(metrics, sum(p.numel() for p in student.parameters()), time.time() - start, key)
        first = next(iter(data.values()))

        def write(tmp: Path) -> dict:
            card = multitask_card(self.card_facts(data, record), cfg.tasks.sampling)
            export_student(
                tmp / "export", module.student, first.tokenizer, self.tasks, first.hparams.max_length, card
            )
            return record

        return store.publish(key, write, barrier=lambda: wait_for_rank_zero(trainer, "student exported"))

    def record(self, metrics: dict[str, float], params: int, seconds: float, key: str) -> dict:
        """The student's record: its mean monitored score, and per task its metrics and degradation."""
        tasks = {}
        for name, part in self.parts.items():
            own = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{name}/")}
            tasks[name] = {
                "metrics": own,
                "relative_degradation": relative_degradation(part.teacher.metrics, own),
                "loss": part.loss.describe(),
                "targets": part.source.describe(),
            }
        return {
            "name": self.cfg.student.name,
            "alpha": float(self.cfg.distill.alpha),
            "score": metrics.get("score"),
            "sampling": OmegaConf.to_container(self.cfg.tasks, resolve=True),
            "tasks": tasks,
            "params": params,
            "train_time_s": round(seconds, 1),
            "key": key,
        }

    def card_facts(self, data: dict, record: dict) -> dict:
        facts = {}
        for name, part in self.parts.items():
            own = {**record, **record["tasks"][name]}
            facts[name] = part.card_facts(data[name], own, part.teacher.metrics)
        return facts

    def run(self) -> tuple[dict, bool, Path]:
        """The student's record, whether it was reused, and the run's copy of its export."""
        probes = {n: p.data() for n, p in self.parts.items()}
        key, store = self.key(probes), multitask_store(self.cfg)
        export = self.run_dir / "student" / "export"
        copy_export = lambda artifact: artifact.copy_out("export", export)  # noqa: E731
        artifact = store.get_or_build(key, lambda: self.fit(probes, store, key), use=copy_export)
        if artifact.reused:
            log.info("student: reusing the multi-task student finished in %s", artifact.path)
        return artifact.meta, artifact.reused, export

    def task_result(self, name: str, record: dict, reused: bool, export: Path) -> StudentResult:
        """The shared student as one task's student: its metrics and degradation on that task."""
        own = record["tasks"][name]
        return StudentResult(
            name=record["name"],
            alpha=record["alpha"],
            metrics=own["metrics"],
            params=record["params"],
            relative_degradation=own["relative_degradation"],
            loss=own["loss"],
            targets={**own["targets"], "multitask": list(self.tasks)},
            train_time_s=record["train_time_s"],
            key=record["key"],
            reused=reused,
            export=str(export.resolve()),
        )


def retire_multitask(cfg: DictConfig, key: str, run_dir: Path) -> None:
    """After the records: the student's checkpoints into the run dir (the student stays published)."""
    store = multitask_store(cfg)
    with locked(store.path(key)):
        retire_work(store.work_dir(key), run_dir / "student")
