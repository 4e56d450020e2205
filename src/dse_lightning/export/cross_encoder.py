"""Export a teacher as a sentence-transformers `CrossEncoder` folder: `CrossEncoder(path).predict(pairs)`
gives the teacher's raw logits, in a Python without dse_lightning.

Two settings make its predictions the teacher's: the max length (saved as the tokenizer's
`model_max_length`; sentence-transformers truncates pairs longest-first, as our pair view does) and the
activation, saved as `torch.nn.Identity` in `config_sentence_transformers.json` (a one-output model would
otherwise get a Sigmoid in `predict`; a `torch.` path loads without `trust_remote_code`).
The folder is an artifact (store.py): its manifest's meta records the task and the max length.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data.tasks import TaskSpec
from ..store import publish

KIND = "cross-encoder export"


def export_cross_encoder(
    path: str | Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    max_length: int,
    card: str | None = None,
) -> Path:
    """Write the sequence classifier `model` (a TeacherModule's `.model`) to `path` atomically, from this
    process; `card` (export/card.py) becomes its README.md."""
    from sentence_transformers import CrossEncoder  # seconds to import: only when writing

    def write(tmp: Path) -> dict:
        staged = tmp / ".model"  # CrossEncoder loads a folder; it saves its own copy into tmp
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        ce = CrossEncoder(
            str(staged),
            max_length=max_length,
            activation_fn=nn.Identity(),
            device="cpu",
            local_files_only=True,
        )
        if len(task.labels) == task.num_labels:  # class logits: name them (a regression has one output)
            ce.model.config.id2label = dict(enumerate(task.labels))
            ce.model.config.label2id = {label: i for i, label in enumerate(task.labels)}
        ce.save(str(tmp))
        shutil.rmtree(staged)
        if card is not None:  # in place of sentence-transformers' generic card
            (tmp / "README.md").write_text(card)
        return {"task_type": task.type, "labels": task.labels, "max_length": max_length}

    return publish(path, KIND, write, writer=True).path
