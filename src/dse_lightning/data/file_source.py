"""A task's rows from a user's own files: CSV, TSV, JSON Lines or parquet, read by `datasets`' own loaders,
their columns mapped by the task file (`files:`), each row checked as a GLUE row is (docs/your-data.md).

    files: {sentence1: question1, sentence2: question2, label: is_duplicate, id: null}
    splits: {train: {file: data/train.csv}, dev: {file: data/dev.csv}}

Labels are read as the task declares them: a class by its name in `labels` (a CSV's 0/1 read as "0"/"1"),
a score within `score_range`. Without an id column a row's id is `<split>-<row>`: stable while the file is.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from ..utils.io import sha256_file, sha256_json
from .glue_reader import BadRows, GlueFormatError, check_bad_rows, check_unique_ids
from .tasks import TaskSpec

# the `datasets` packaged loader of each format, and its arguments
LOADERS = {
    "csv": ("csv", {"delimiter": ","}),
    "tsv": ("csv", {"delimiter": "\t"}),
    "jsonl": ("json", {}),
    "json": ("json", {}),
    "parquet": ("parquet", {}),
}


def table_format(path: Path, declared: str | None = None) -> str:
    """The declared format, else the file's suffix (csv, tsv, jsonl, json, parquet)."""
    return (declared or path.suffix.lstrip(".")).lower()


def row_place(fmt: str, index: int) -> int | str:
    """Where row `index` (0-based) of a table file is: its line (after a CSV/TSV header), or "row N"."""
    if fmt == "parquet":
        return f"row {index + 1}"
    return index + (2 if fmt in ("csv", "tsv") else 1)


def read_table(path: Path, fmt: str, option: str) -> datasets.Dataset:
    """A CSV / TSV / JSON Lines / parquet file as a Dataset, through datasets' own loaders, into memory
    via a cache of its own (datasets' shared cache keys files by name and date); `option` is what sets
    the format, for the error."""
    if fmt not in LOADERS:
        raise GlueFormatError(f"{path}: {option}={fmt!r}: expected one of {list(LOADERS)}")
    loader, kwargs = LOADERS[fmt]
    try:
        if loader == "csv":
            kwargs = {**kwargs, **_as_text(path, kwargs["delimiter"])}
        with tempfile.TemporaryDirectory(prefix="dse-files-") as cache:
            return datasets.load_dataset(
                loader, data_files=str(path), split="train", cache_dir=cache, keep_in_memory=True, **kwargs
            )
    except Exception as err:  # datasets' own parse errors (a JSON line, a parquet footer, a CSV field)
        raise GlueFormatError(
            f"{path}: not a readable {fmt} file ({type(err).__name__}: {err}); {option} says how to read it"
        ) from err


def _as_text(path: Path, delimiter: str) -> dict:
    """CSV / TSV fields read as the strings they are ("007" stays an id, "NA" a sentence; labels are parsed
    from strings anyway): every column of the header a string feature, no NA detection."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    features = datasets.Features({name: datasets.Value("string") for name in header})
    return {"features": features, "keep_default_na": False, "na_filter": False, "encoding": "utf-8-sig"}


@dataclass
class FileSource:
    task: TaskSpec
    max_bad_rows: int = 10
    max_bad_fraction: float = 0.001

    def _path(self, split: str) -> Path:
        path = Path(self.task.splits[split].file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"task '{self.task.name}', split '{split}': {path}: no such file")
        return path

    def describe(self, split: str) -> str:
        return str(self._path(split))

    def fingerprint(self, split: str) -> str:
        """The file's content and the mapping that reads it (another mapping makes other rows)."""
        return sha256_json({"file": sha256_file(self._path(split)), "files": asdict(self.task.files)})

    def load(self, split: str) -> datasets.Dataset:
        path, cols = self._path(split), self.task.files
        fmt = table_format(path, cols.format)
        raw = read_table(path, fmt, "task.files.format")
        wanted = [c for c in (cols.sentence1, cols.sentence2, cols.label, cols.id) if c]
        if missing := [c for c in wanted if c not in raw.column_names]:
            raise GlueFormatError(
                f"{path}: no column(s) {missing} (task.files names them); found {raw.column_names}"
            )
        rows = {"id": [], "sentence1": [], "sentence2": [], "label": []}
        bad = BadRows()
        ids = raw[cols.id] if cols.id else [f"{split}-{i}" for i in range(len(raw))]
        columns = zip(raw[cols.sentence1], raw[cols.sentence2], raw[cols.label], ids, strict=True)
        for i, (s1, s2, label, idx) in enumerate(columns):
            try:
                row = self._row(s1, s2, label, idx)
            except ValueError as err:
                bad.add(
                    row_place(fmt, i), f"{err} (columns {cols.sentence1}, {cols.sentence2}, {cols.label})"
                )
                continue
            for key, value in zip(rows, row, strict=True):
                rows[key].append(value)
        check_bad_rows(path, bad, len(raw), self.max_bad_rows, self.max_bad_fraction)
        if not rows["id"]:
            raise GlueFormatError(f"{path}: no data rows")
        check_unique_ids(path, rows["id"])
        return datasets.Dataset.from_dict(rows)

    def _row(self, s1, s2, label, idx) -> tuple:
        if not (isinstance(s1, str) and s1.strip() and isinstance(s2, str) and s2.strip()):
            raise ValueError("empty sentence")
        if label is None:
            raise ValueError("no label")
        raw = str(label).strip()
        if self.task.kind.class_logits and isinstance(label, float) and label.is_integer():
            raw = str(int(label))  # a pandas-read 1.0 is the class "1"
        task = self.task
        return str(idx), s1.strip(), s2.strip(), task.kind.parse_label(raw, task.labels, task.score_range)
