"""The model card of a student export: `README.md` with the Hugging Face hub's YAML metadata, and a body
that says what produced the model (teacher, alpha, loss, targets, data checksums, the command) and how it
scores beside its teacher, with how to load it through `load_student` and through sentence-transformers.

Its numbers are the run's own record (the dict results.json's `student` holds), so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ..data.tasks import TaskSpec
from ..results import TeacherResult
from ..utils.portable import base_model_name, portable

HUB_TASK = {"regression": "sentence-similarity"}  # everything else: text-classification


@dataclass
class CardFacts:
    task: TaskSpec
    teacher: TeacherResult
    teacher_metrics: dict[str, float]  # what the degradation is against: the teacher's, or its ensemble's
    record: dict  # the student's record: name, alpha, loss, targets, metrics, relative_degradation, ...
    backbone: object  # the student's backbone as configured (name, folder or a config dict)
    transformer: bool  # a sentence-transformers folder (a transformer student) or the BiLSTM's own files
    command: list[str]  # the overrides of `python -m dse_lightning.train`
    data: dict[str, dict[str, str]]  # split -> {"source": ..., "sha256": ...}


def _metadata(f: CardFacts) -> dict:
    task, metrics = f.task, f.record["metrics"]
    meta = {
        "library_name": "sentence-transformers" if f.transformer else "dse-lightning",
        "pipeline_tag": "sentence-similarity",
        "tags": ["dse-lightning", "distilled-sentence-embedding", "knowledge-distillation", "sentence-pair"]
        + (["sentence-transformers", "feature-extraction"] if f.transformer else []),
        "datasets": [task.hub.path],
        "language": ["en"],
    }
    base = base_model_name(f.backbone)
    if base:
        meta["base_model"] = base
    split = task.eval_splits[0]
    dataset = {"type": task.hub.path, "name": f"GLUE {task.name.upper()}", "config": task.hub.name}
    meta["model-index"] = [
        {
            "name": f"{f.record['name']}-{task.name}",
            "results": [
                {
                    "task": {"type": HUB_TASK.get(task.type, "text-classification"), "name": task.name},
                    "dataset": {**dataset, "split": task.splits[split].hub},
                    "metrics": [
                        {"type": name, "value": float(value), "name": f"dev {name}"}
                        for name, value in metrics.items()
                    ],
                }
            ],
        }
    ]
    return meta


def _metrics_table(f: CardFacts) -> list[str]:
    teacher, student, rel = f.teacher_metrics, f.record["metrics"], f.record["relative_degradation"]
    rows = ["| dev metric | teacher | student | relative degradation |", "|---|---|---|---|"]
    for name, value in student.items():
        t = f"{teacher[name]:.4f}" if name in teacher else "-"
        r = f"{100 * rel[name]:.2f}%" if name in rel else "-"
        rows.append(f"| {name} | {t} | {value:.4f} | {r} |")
    return rows


def _usage(f: CardFacts) -> list[str]:
    pair = '["A man plays a guitar."], ["Someone plays guitar."]'
    lines = [
        "## Use",
        "",
        "Pair scores with the trained head (`pip install dse-lightning`):",
        "",
        "```python",
        "from dse_lightning import load_student",
        "",
        'student = load_student("path/to/this/folder")  # or backend="onnx-int8" / "openvino-int8"',
        f"scores = student.score({pair})",
        "```",
    ]
    if f.transformer:
        lines += [
            "",
            "Sentence embeddings with sentence-transformers alone (the DSE pooling's code is in this folder;",
            "a mean, max or CLS pooling needs no `trust_remote_code`):",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            'model = SentenceTransformer("path/to/this/folder", trust_remote_code=True)',
            'embeddings = model.encode(["A man plays a guitar."])',
            "```",
        ]
    return lines


def model_card(f: CardFacts) -> str:
    r = f.record
    header = yaml.safe_dump(portable(_metadata(f)), sort_keys=False, allow_unicode=True)
    recipe = [
        "| | |",
        "|---|---|",
        f"| teacher | {f.teacher.name} (store key {f.teacher.key}, {f.teacher.params:,} parameters) |",
        f"| student | {r['name']} ({r['params']:,} parameters) |",
        f"| alpha | {r['alpha']} (loss = (1 - alpha) task loss + alpha distillation loss) |",
        f"| distillation loss | {r['loss']} |",
        f"| targets | {r['targets']} |",
    ]
    data = ["| split | source | sha256 |", "|---|---|---|"] + [
        f"| {split} | {portable(d['source'])} | `{d['sha256']}` |" for split, d in f.data.items()
    ]
    body = [
        f"# {r['name']} student for {f.task.name.upper()}, distilled with dse-lightning",
        "",
        "A siamese sentence encoder and pair head distilled from a cross-encoder teacher (Distilled Sentence",
        "Embedding, Barkan et al. 2020): each sentence is embedded once, a pair is scored from",
        "[u, v, u*v, |u-v|], so candidate embeddings can be cached.",
        "",
        "## Training",
        "",
        *recipe,
        "",
        "## Dev metrics",
        "",
        *_metrics_table(f),
        "",
        "Relative degradation = (teacher - student) / teacher (the paper's measure; lower is better).",
        "",
        "## Command",
        "",
        "```bash",
        " ".join(["python -m dse_lightning.train", *portable(f.command)]),
        "```",
        "",
        "## Data",
        "",
        *data,
        "",
        *_usage(f),
    ]
    return f"---\n{header}---\n\n" + "\n".join(body) + "\n"
