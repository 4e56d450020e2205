"""A local copy of nyu-mll/glue in the hub's own layout, for tests: `<config>/<split>-00000-of-00001.parquet`
with the hub's column names and features (ClassLabel ints, float scores, int idx) and the README configs
`datasets.load_dataset(folder, config)` reads. `data.hub_dir=<folder>` points the project at it.

MRPC, STS-B and RTE rows come from the real files in ../shared/data/glue (the first `rows` of each split);
QQP, MNLI and QNLI, whose files are not available offline, get fixture rows written in their hub schemas.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import yaml

from conftest import SHARED_GLUE
from dse_lightning.config import load_task
from dse_lightning.data.glue_reader import find_split_file, read_glue_tsv

# config -> (sentence columns, ClassLabel names or None for a float score), as on the hub
SCHEMAS = {
    "mrpc": (("sentence1", "sentence2"), ["not_equivalent", "equivalent"]),
    "stsb": (("sentence1", "sentence2"), None),
    "rte": (("sentence1", "sentence2"), ["entailment", "not_entailment"]),
    "qqp": (("question1", "question2"), ["not_duplicate", "duplicate"]),
    "qnli": (("question", "sentence"), ["entailment", "not_entailment"]),
    "mnli": (("premise", "hypothesis"), ["entailment", "neutral", "contradiction"]),
}
REAL = ("mrpc", "stsb", "rte")
WORDS = "the a man woman dog cat plays runs guitar park city market river quickly slowly red blue".split()


def _features(config: str) -> datasets.Features:
    (a, b), names = SCHEMAS[config]
    label = datasets.ClassLabel(names=names) if names else datasets.Value("float32")
    return datasets.Features(
        {
            a: datasets.Value("string"),
            b: datasets.Value("string"),
            "label": label,
            "idx": datasets.Value("int32"),
        }
    )


def _real(config: str, split: str, rows: int | None) -> dict[str, list]:
    task = load_task(config)
    cols = read_glue_tsv(find_split_file(SHARED_GLUE, task, split), task)
    n = rows or len(cols["id"])
    (a, b), _ = SCHEMAS[config]
    return {
        a: cols["sentence1"][:n],
        b: cols["sentence2"][:n],
        "label": cols["label"][:n],
        "idx": list(range(n)),
    }


def _fixture(config: str, n: int, offset: int) -> dict[str, list]:
    """n pairs whose label follows from the words (so a model can learn something), in the hub schema."""
    (a, b), names = SCHEMAS[config]
    k = len(names) if names else 0
    first, second, labels = [], [], []
    for i in range(offset, offset + n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(4 + i % 5)]
        first.append(" ".join(words) + ".")
        second.append(" ".join(reversed(words[: 2 + i % 3])) + (" not." if i % 2 else "."))
        labels.append(i % k if k else float(i % 6))
    return {a: first, b: second, "label": labels, "idx": list(range(offset, offset + n))}


def _splits(config: str, rows: int | None) -> dict[str, dict[str, list]]:
    if config in REAL:
        return {"train": _real(config, "train", rows), "validation": _real(config, "dev", rows)}
    n = rows or 48
    dev = {
        "validation_matched": _fixture(config, n // 2, 10_000),
        "validation_mismatched": _fixture(config, n // 3, 20_000),
    }
    return {
        "train": _fixture(config, n, 0),
        **(dev if config == "mnli" else {"validation": _fixture(config, n // 2, 10_000)}),
    }


def build_mirror(
    root: Path, configs=tuple(SCHEMAS), rows: int | None = 64, extra: dict | None = None
) -> Path:
    """Write the mirror of `configs` under `root`; rows=None: every row of the real files.
    extra: {config: {split: columns}} splits added as given (e.g. a test split whose labels are -1)."""
    entries = []
    for config in configs:
        splits = {**_splits(config, rows), **(extra or {}).get(config, {})}
        files = []
        for split, columns in splits.items():
            path = f"{config}/{split}-00000-of-00001.parquet"
            (root / config).mkdir(parents=True, exist_ok=True)
            features = _features(config)
            if any(v == -1 for v in columns["label"]):  # the hub's unlabeled test splits
                features["label"] = datasets.Value("int64")
            datasets.Dataset.from_dict(columns, features=features).to_parquet(str(root / path))
            files.append({"split": split, "path": path})
        entries.append({"config_name": config, "data_files": files})
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": entries}, sort_keys=False) + "---\n")
    return root
