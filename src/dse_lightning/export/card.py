"""The model cards of the exports: `README.md` with the Hugging Face hub's YAML metadata, and a body that
says what produced the model (data checksums, the command) and how to load it.

A student's card (`model_card`) adds its recipe (teacher, alpha, loss, targets) and how it scores beside its
teacher, loaded through `load_student` and through sentence-transformers; a teacher's (`cross_encoder_card`)
its dev metrics and how to get its logits from sentence-transformers' `CrossEncoder`.
Their numbers are the run's own records (results.json's `teacher` and `student`), so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ..data.tasks import TaskSpec
from ..results import TeacherResult
from ..utils.portable import base_model_name, portable

HUB_TASK = {"regression": "sentence-similarity"}  # everything else: text-classification


@dataclass
class RunFacts:
    """What produced a model, whichever it is: a teacher's card needs no more."""

    task: TaskSpec
    teacher: TeacherResult
    backbone: object  # the model's backbone as configured (name, folder or a config dict)
    command: list[str]  # the overrides of `python -m dse_lightning.train`
    data: dict[str, dict[str, str]]  # split -> {"source": ..., "sha256": ...}


@dataclass
class CardFacts(RunFacts):
    """A student's: its record and what its degradation is measured against."""

    teacher_metrics: dict[str, float]  # what the degradation is against: the teacher's, or its ensemble's
    record: dict  # the student's record: name, alpha, loss, targets, metrics, relative_degradation, ...
    transformer: bool  # a sentence-transformers folder (a transformer student) or the BiLSTM's own files


def _metadata(f: RunFacts, model: str, metrics: dict[str, float], **meta) -> dict:
    """The hub's metadata: `meta` (library, pipeline tag, tags), the data, the base model, dev metrics."""
    task = f.task
    meta = {**meta, "datasets": [task.hub.path], "language": ["en"]}
    base = base_model_name(f.backbone)
    if base:
        meta["base_model"] = base
    split = task.eval_splits[0]
    dataset = {"type": task.hub.path, "name": f"GLUE {task.name.upper()}", "config": task.hub.name}
    meta["model-index"] = [
        {
            "name": f"{model}-{task.name}",
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


def _render(meta: dict, body: list[str]) -> str:
    header = yaml.safe_dump(portable(meta), sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n" + "\n".join(body) + "\n"


def _provenance(f: RunFacts) -> list[str]:
    """The command and the data (with checksums) that produced the model."""
    data = ["| split | source | sha256 |", "|---|---|---|"] + [
        f"| {split} | {portable(d['source'])} | `{d['sha256']}` |" for split, d in f.data.items()
    ]
    command = " ".join(["python -m dse_lightning.train", *portable(f.command)])
    return ["## Command", "", "```bash", command, "```", "", "## Data", "", *data]


def model_card(f: CardFacts) -> str:
    r = f.record
    meta = _metadata(
        f,
        r["name"],
        r["metrics"],
        library_name="sentence-transformers" if f.transformer else "dse-lightning",
        pipeline_tag="sentence-similarity",
        tags=["dse-lightning", "distilled-sentence-embedding", "knowledge-distillation", "sentence-pair"]
        + (["sentence-transformers", "feature-extraction"] if f.transformer else []),
    )
    recipe = [
        "| | |",
        "|---|---|",
        f"| teacher | {f.teacher.name} (store key {f.teacher.key}, {f.teacher.params:,} parameters) |",
        f"| student | {r['name']} ({r['params']:,} parameters) |",
        f"| alpha | {r['alpha']} (loss = (1 - alpha) task loss + alpha distillation loss) |",
        f"| distillation loss | {r['loss']} |",
        f"| targets | {r['targets']} |",
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
        *_provenance(f),
        "",
        *_usage(f),
    ]
    return _render(meta, body)


def _cross_encoder_usage(f: RunFacts, max_length: int) -> list[str]:
    n = f.task.num_labels
    if n > 1:
        outputs = [
            f"`predict` returns the teacher's raw outputs, (N, {n}) logits: what the students were distilled",
            "from. `apply_softmax=True` gives class probabilities instead (sentence-transformers' default:",
            "False).",
        ]
    else:
        outputs = [
            "`predict` returns the teacher's raw outputs, (N,) predicted scores: what the students were",
            "distilled from. The folder saves an identity activation (`config_sentence_transformers.json`)",
            "in place of sentence-transformers' default sigmoid for a one-output model; pass",
            "`activation_fn=torch.nn.Sigmoid()` to `predict` for the sigmoid.",
        ]
    return [
        "## Use",
        "",
        "With sentence-transformers alone (no dse-lightning needed):",
        "",
        "```python",
        "from sentence_transformers import CrossEncoder",
        "",
        'model = CrossEncoder("path/to/this/folder")',
        'logits = model.predict([("A man plays a guitar.", "Someone plays guitar.")])',
        "```",
        "",
        *outputs,
        f"Pairs are truncated to {max_length} tokens, longest sentence first, as in training.",
    ]


def cross_encoder_card(f: RunFacts, max_length: int) -> str:
    """The card of a teacher's CrossEncoder export (export/cross_encoder.py)."""
    t, task = f.teacher, f.task
    meta = _metadata(
        f,
        t.name,
        t.metrics,
        library_name="sentence-transformers",
        pipeline_tag="text-classification",
        tags=["dse-lightning", "cross-encoder", "sentence-transformers", "sentence-pair", "teacher"],
    )
    outputs = ", ".join(task.labels) if task.num_labels > 1 else "one score"
    metrics = ["| dev metric | value |", "|---|---|"] + [
        f"| {name} | {value:.4f} |" for name, value in t.metrics.items()
    ]
    body = [
        f"# {t.name} cross-encoder for {task.name.upper()}, fitted with dse-lightning",
        "",
        "The teacher of a Distilled Sentence Embedding run (Barkan et al. 2020): a cross-encoder over",
        "`[CLS] s1 [SEP] s2 [SEP]` whose outputs the siamese students learn from.",
        "",
        "| | |",
        "|---|---|",
        f"| task | {task.name} ({task.type}; outputs: {outputs}) |",
        f"| teacher | {t.name} (store key {t.key}, {t.params:,} parameters) |",
        f"| max length | {max_length} tokens |",
        "",
        "## Dev metrics",
        "",
        *metrics,
        "",
        *_provenance(f),
        "",
        *_cross_encoder_usage(f, max_length),
    ]
    return _render(meta, body)


def multitask_card(facts: dict[str, CardFacts], sampling: str) -> str:
    """The card of a multi-task student (`tasks=`): one encoder, one head per task; each task's recipe,
    dev metrics against its own teacher and data, from the run's records."""
    first = next(iter(facts.values()))
    metas = [
        _metadata(f, f.record["name"], f.record["metrics"], library_name="sentence-transformers")
        for f in facts.values()
    ]
    meta = {
        "library_name": "sentence-transformers" if first.transformer else "dse-lightning",
        "pipeline_tag": "sentence-similarity",
        "tags": ["dse-lightning", "distilled-sentence-embedding", "knowledge-distillation", "multi-task"],
        "datasets": sorted({d for m in metas for d in m["datasets"]}),
        "language": ["en"],
        **({"base_model": metas[0]["base_model"]} if "base_model" in metas[0] else {}),
        "model-index": [entry for m in metas for entry in m["model-index"]],
    }
    names = ", ".join(n.upper() for n in facts)
    body = [
        f"# {first.record['name']} multi-task student for {names}, distilled with dse-lightning",
        "",
        "One siamese sentence encoder shared by every task and a pair head per task, each distilled from",
        f"that task's cross-encoder teacher (batches drawn from the tasks: {sampling}). A sentence is",
        "embedded once; any task's head scores the cached embeddings.",
        "",
        "## Use",
        "",
        "```python",
        "from dse_lightning import load_student",
        "",
        'student = load_student("path/to/this/folder")',
        'pair = ["A man plays a guitar."], ["Someone plays guitar."]',
        f'scores = student.score(*pair, task="{next(iter(facts))}")',
        "```",
    ]
    for name, f in facts.items():
        r = f.record
        body += [
            "",
            f"## {name.upper()}",
            "",
            f"Teacher {f.teacher.name} (store key {f.teacher.key}); alpha {r['alpha']}; loss {r['loss']};",
            f"targets {r['targets']}.",
            "",
            *_metrics_table(f),
            "",
            *_provenance(f)[4:],  # its data (the command is one for all tasks)
        ]
    command = " ".join(["python -m dse_lightning.train", *portable(first.command)])
    body += ["", "## Command", "", "```bash", command, "```"]
    return _render(meta, body)
