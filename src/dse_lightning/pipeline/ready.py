"""A ready fine-tuned cross-encoder as the teacher (`teacher=cross_encoder`): used as it is
(`teacher.max_epochs=0`, the entry's default: dev evaluation and logits export only) or fine-tuned further.

`teacher.model` is a folder or a hub id: a sentence-transformers CrossEncoder folder or any
sequence-classification one (config.json, weights, tokenizer). Both load through
`AutoModelForSequenceClassification` with their own head, read as the task's logits by `teacher.outputs`
(models/teacher_outputs.py). A hub id differs only in the download: its snapshot lands in the hub cache and
is from there on a folder like any other. The model enters the store key as the sha256 of its weight files
(utils/portable.py `weight_hashes`), not as its path: a moved folder keeps its teacher, new weights do not.
"""

from __future__ import annotations

from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from omegaconf import DictConfig
from transformers import AutoConfig

from ..data.datamodule import GluePairDataModule
from ..data.tasks import TaskSpec
from ..logits import KeyedLogits
from ..models.teacher_module import TeacherModule
from ..models.teacher_outputs import OutputMap
from ..options import OptionError, at_least
from ..utils.io import sha256_json
from ..utils.portable import weight_hashes
from .teacher import ModuleTeacher

# What a teacher needs of a hub repository (not its ONNX or OpenVINO copies); PyTorch .bin weights only
# where it has no safetensors.
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]


class ReadyTeacher(ModuleTeacher):
    def __init__(self, model: str, outputs: OutputMap) -> None:
        self.model, self.outputs = str(model), outputs

    def folder(self) -> Path:
        """The model's folder: as given, or the hub's snapshot of the hub id (downloaded once)."""
        if Path(self.model).is_dir():
            return Path(self.model)
        try:
            folder = Path(snapshot_download(self.model, allow_patterns=HUB_FILES))
            if not weight_hashes(folder):
                folder = Path(snapshot_download(self.model, allow_patterns=[*HUB_FILES, "*.bin"]))
        except Exception as err:  # no such repository, no network, a malformed id: the hub's own words
            raise OptionError(
                f"teacher.model={self.model}: no such folder, and the hub did not give it ({err})"
            ) from err
        return folder

    def option_errors(self, cfg: DictConfig, task: TaskSpec) -> list[str]:
        # 0 epochs: the model as it is. Its number of outputs is checked against teacher.outputs here too,
        # from its config.json, before any data is read.
        errors = at_least(cfg, "teacher.max_epochs", 0) + at_least(cfg, "teacher.batch_size", 1)
        try:
            found = AutoConfig.from_pretrained(self.model).num_labels
        except (OSError, ValueError) as err:  # no config.json, no such hub model, an unknown model type
            return [*errors, f"teacher.model={self.model}: cannot read its config.json ({err})"]
        try:
            self.outputs.check(task, found, self.model)
        except ValueError as err:
            errors.append(str(err))
        return errors

    def inputs(self, cfg: DictConfig) -> list[dict]:
        folder = self.folder()
        if not (weights := weight_hashes(folder)):
            raise OptionError(
                f"teacher.model={self.model}: no weight files (*.safetensors, pytorch_model*.bin) in {folder}"
            )
        model = {"option": "teacher.model", "name": self.model, "sha256": sha256_json(weights)}
        return [*super().inputs(cfg), model]

    def check(self, module: TeacherModule, dm: GluePairDataModule, predicted: dict[str, KeyedLogits]) -> None:
        """Refuse a reading of the model's outputs that dev says is plainly wrong (`OutputMap.problem`)."""
        task = dm.task
        for split in task.eval_splits:
            rows = dm.raw(split)
            logits = predicted[split].for_ids(list(rows["id"]))  # (N, C), task space
            labels = torch.tensor(rows["label"], dtype=task.kind.label_dtype)
            if problem := self.outputs.problem(task, logits, labels):
                raise OptionError(
                    f"teacher.model={self.model} on {task.name}/{split}: {problem}. The model's outputs are "
                    "read wrongly: fix teacher.outputs (teacher/outputs=classes|one_logit|score and its "
                    "options; docs/teachers.md); nothing was published"
                )
