"""Real sentences for the benchmark: the distinct sentences of GLUE tasks' train and dev files."""

from __future__ import annotations

from ..config import load_task
from ..data.sources import resolve_source


def real_sentences(tasks: list[str], data_dir: str | None) -> tuple[list[str], dict[str, str]]:
    """Distinct sentences (first-occurrence order) of every split of `tasks`, and where each came from."""
    sentences: dict[str, None] = {}
    sources: dict[str, str] = {}
    for name in tasks:
        task = load_task(name)
        source = resolve_source(task, data_dir)
        for split in task.splits:
            rows = source.load(split)
            sources[f"{name}/{split}"] = source.describe(split)
            sentences.update(dict.fromkeys(rows["sentence1"]))
            sentences.update(dict.fromkeys(rows["sentence2"]))
    return list(sentences), sources
