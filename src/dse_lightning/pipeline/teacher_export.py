"""The teacher's CrossEncoder export (export/cross_encoder.py): written into the teacher's store artifact as
`cross_encoder/` beside `model.ckpt`, and copied to `<run dir>/teacher/cross_encoder` by every run that
fits or reuses the teacher, as the student's export is to `<run dir>/student/export`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pytorch_lightning.utilities import rank_zero_only

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..export.card import RunFacts, cross_encoder_card
from ..export.cross_encoder import export_cross_encoder
from ..models.teacher_module import TeacherModule
from ..results import TeacherResult
from ..store import Artifact
from ..sweep import job_overrides
from .common import card_data

log = logging.getLogger(__name__)
EXPORT = "cross_encoder"  # the export's folder in the teacher artifact; `teacher/<EXPORT>` in the run dir


def export_teacher(
    task: TaskSpec, dm: GluePairDataModule, module: TeacherModule, record: dict, path: Path
) -> Path:
    """Write `module`'s CrossEncoder folder to `path`, its card made of the teacher's `record` (the meta
    of its store artifact) and the data's checksums."""
    facts = RunFacts(
        task=task,
        teacher=TeacherResult(**{k: v for k, v in record.items() if k != "data"}),  # as run_teacher
        backbone=module.hparams.backbone,
        command=job_overrides(),
        data=card_data(dm),
    )
    max_length = dm.hparams.max_length
    card = cross_encoder_card(facts, max_length)
    return export_cross_encoder(path, module.model, dm.tokenizer, task, max_length, card)


def copy_teacher_export(task: TaskSpec, dm: GluePairDataModule, artifact: Artifact, path: Path) -> None:
    """The run's copy of the teacher's export at `path`, taken from its artifact (under the artifact's
    lock: the store's `use=`). A teacher published before exports existed has none: it is exported from
    its checkpoint, into the run dir only (the artifact, verified by its manifest, stays as it is)."""
    if (artifact.path / EXPORT).is_dir():
        artifact.copy_out(EXPORT, path)
    elif rank_zero_only.rank == 0:  # under DDP the ranks share the run dir
        log.info("teacher: %s predates the CrossEncoder export; exporting it from model.ckpt", artifact.path)
        ckpt = artifact.path / "model.ckpt"
        module = TeacherModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False)
        export_teacher(task, dm, module, artifact.meta, path)
