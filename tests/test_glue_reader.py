"""Loading of all six task formats, the malformed-row policy and the file errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import MRPC_HEADER, SHARED_GLUE, mrpc_rows, write_tsv
from dse_lightning.config import load_task
from dse_lightning.data.glue_reader import GlueFormatError, read_glue_tsv
from dse_lightning.data.sources import HubSource, LocalSource, resolve_source


@pytest.mark.parametrize(
    ("task", "split", "rows", "positives"),
    [
        ("mrpc", "train", 3668, 2474),
        ("mrpc", "dev", 408, 279),
        ("rte", "train", 2490, None),
        ("rte", "dev", 277, None),
        ("stsb", "train", 5749, None),
        ("stsb", "dev", 1500, None),
    ],
)
def test_real_shared_data(task: str, split: str, rows: int, positives: int | None) -> None:
    source = resolve_source(load_task(task), str(SHARED_GLUE))
    ds = source.load(split)
    assert len(ds) == rows
    assert len(set(ds["id"])) == rows
    if positives is not None:
        assert sum(ds["label"]) == positives  # MANIFEST label balance
    if task == "stsb":
        assert 0.0 <= min(ds["label"]) and max(ds["label"]) <= 5.0


def test_mrpc_bom_header_and_ids() -> None:
    ds = LocalSource(SHARED_GLUE, load_task("mrpc")).load("train")
    assert ds[0]["id"] == "702876_702977"
    assert ds[0]["sentence1"].startswith("Amrozi accused his brother")


def test_qnli_dev_real_and_rte_labels() -> None:
    qnli = LocalSource(SHARED_GLUE, load_task("qnli")).load("dev")
    assert len(qnli) == 5463 and sum(qnli["label"]) == 2761  # not_entailment is class 1
    rte = LocalSource(SHARED_GLUE, load_task("rte")).load("dev")
    assert sum(1 for x in rte["label"] if x == 0) == 146  # entailment is class 0


@pytest.mark.parametrize(
    ("task", "split", "rows"),
    [
        ("qqp", "train", 40),
        ("qqp", "dev", 12),
        ("mnli", "train", 36),
        ("mnli", "dev", 9),
        ("mnli", "dev_mm", 6),
        ("qnli", "train", 30),
    ],
)
def test_fixture_formats(glue_fixture_dir: Path, task: str, split: str, rows: int) -> None:
    ds = resolve_source(load_task(task), str(glue_fixture_dir)).load(split)
    assert len(ds) == rows
    assert set(ds.column_names) == {"id", "sentence1", "sentence2", "label"}
    if task == "mnli":
        assert sorted(set(ds["label"])) == [0, 1, 2]


def _big_mrpc(tmp_path: Path, n: int, bad_lines: list[int]) -> Path:
    rows = mrpc_rows(n)
    for i in bad_lines:
        rows[i] = rows[i][:3]  # a row missing its two sentence columns
    return write_tsv(tmp_path / "MRPC" / "train.tsv", MRPC_HEADER, rows, bom=True)


def test_few_malformed_rows_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    path = _big_mrpc(tmp_path, 2000, [5, 700])
    with caplog.at_level(logging.WARNING):
        cols = read_glue_tsv(path, load_task("mrpc"))
    assert len(cols["id"]) == 1998
    assert "skipped 2 malformed row(s)" in caplog.text and "line 7" in caplog.text


def test_too_many_malformed_rows_by_fraction(tmp_path: Path) -> None:
    path = _big_mrpc(tmp_path, 2000, [5, 700, 900])  # 3 > 0.1% of 2000
    with pytest.raises(GlueFormatError, match=r"train\.tsv: 3 of 2000 rows .* first at line 7"):
        read_glue_tsv(path, load_task("mrpc"))


def test_too_many_malformed_rows_by_count(tmp_path: Path) -> None:
    path = _big_mrpc(tmp_path, 20000, list(range(100, 111)))  # 11 > 10 rows, though < 0.1%
    with pytest.raises(GlueFormatError, match="11 of 20000 rows"):
        read_glue_tsv(path, load_task("mrpc"))


@pytest.mark.parametrize(
    ("task", "header", "row", "reason"),
    [
        ("mrpc", MRPC_HEADER, ["2", "1", "2", "a", "b"], "label '2' is not one of"),
        ("mrpc", MRPC_HEADER, ["1", "1", "2", "  ", "b"], "empty sentence"),
        ("stsb", ["index", "sentence1", "sentence2", "score"], ["0", "a", "b", "n/a"], "could not convert"),
        ("stsb", ["index", "sentence1", "sentence2", "score"], ["0", "a", "b", "7.5"], "outside"),
    ],
)
def test_bad_values_name_the_line(tmp_path: Path, task: str, header, row, reason: str) -> None:
    path = write_tsv(tmp_path / "x.tsv", header, [row])
    with pytest.raises(GlueFormatError, match=rf"x\.tsv: 1 of 1 rows .*line 2: .*{reason}"):
        read_glue_tsv(path, load_task(task))


def test_wrong_header(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "train.tsv", ["index", "sentence1", "sentence2", "label"], [["0", "a", "b", "1"]]
    )
    with pytest.raises(
        GlueFormatError, match=r"train\.tsv: line 1 \(header\) lacks column\(s\) \['#1 String'.*'Quality'"
    ):
        read_glue_tsv(path, load_task("mrpc"))


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "dev.tsv", MRPC_HEADER, [["1", "7", "8", "a", "b"], ["0", "7", "8", "c", "d"]]
    )
    with pytest.raises(GlueFormatError, match="id '7_8' appears more than once"):
        read_glue_tsv(path, load_task("mrpc"))


def test_missing_dir_and_file(tmp_path: Path, mrpc_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data.dir=.*no such directory"):
        resolve_source(load_task("mrpc"), str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no RTE/ folder"):
        resolve_source(load_task("rte"), str(mrpc_dir))
    (mrpc_dir / "MRPC" / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"MRPC: no dev\.tsv or dev\.tsv\.gz"):
        resolve_source(load_task("mrpc"), str(mrpc_dir)).load("dev")


def test_hub_fallback_without_network(monkeypatch, tmp_path: Path) -> None:
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # offline as the environment variables would make it, had they been set before the imports (they are
    # read once): otherwise the hub is tried and its retries wait ~20 s on a machine without network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    source = resolve_source(load_task("qqp"), None)  # no local QQP anywhere: the hub
    assert isinstance(source, HubSource)
    with pytest.raises(FileNotFoundError, match="Set data.dir"):
        source.load("train")


def test_trailing_blank_lines_are_not_rows_but_a_blank_row_inside_is(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(5))
    path.write_text(path.read_text() + "\n\n")  # an editor's trailing newlines
    assert len(read_glue_tsv(path, load_task("mrpc"))["id"]) == 5
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + ["\n"] + lines[3:]))
    with pytest.raises(GlueFormatError, match=r"dev\.tsv: 1 of 6 rows are malformed .* line 4: blank line"):
        read_glue_tsv(path, load_task("mrpc"))


def test_undecodable_byte_and_truncated_archive_name_the_file_and_line(tmp_path: Path) -> None:
    import gzip

    path = write_tsv(tmp_path / "MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(5))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"The company said 2", b"The company said \xff2"))
    with pytest.raises(GlueFormatError, match=r"dev\.tsv: line \d+: not UTF-8 text"):
        read_glue_tsv(path, load_task("mrpc"))
    archive = tmp_path / "MRPC/train.tsv.gz"
    archive.write_bytes(
        gzip.compress(write_tsv(tmp_path / "x.tsv", MRPC_HEADER, mrpc_rows(400)).read_bytes())
    )
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(GlueFormatError, match=r"train\.tsv\.gz: line \d+: the gzip archive is truncated"):
        read_glue_tsv(archive, load_task("mrpc"))


@pytest.mark.parametrize(("bad_line", "suffix"), [(8, ".tsv"), (3000, ".tsv"), (3000, ".tsv.gz")])
def test_an_undecodable_byte_is_reported_on_its_own_line(tmp_path: Path, bad_line: int, suffix: str) -> None:
    import gzip

    # text decodes in chunks: the line being read when the error surfaced was thousands of lines earlier
    lines = write_tsv(tmp_path / "x.tsv", MRPC_HEADER, mrpc_rows(3200)).read_bytes().splitlines(keepends=True)
    lines[bad_line - 1] = lines[bad_line - 1].replace(b"\t", b"\t\xff", 1)
    path = tmp_path / "MRPC" / f"dev{suffix}"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(b"".join(lines)) if suffix == ".tsv.gz" else b"".join(lines))
    with pytest.raises(GlueFormatError, match=rf"dev\.tsv(\.gz)?: line {bad_line}: not UTF-8 text"):
        read_glue_tsv(path, load_task("mrpc"))


def test_a_split_in_both_tsv_and_tsv_gz_is_refused_naming_both(tmp_path: Path) -> None:
    import gzip

    fresh = write_tsv(tmp_path / "MRPC/train.tsv", MRPC_HEADER, mrpc_rows(20))
    (tmp_path / "MRPC/train.tsv.gz").write_bytes(gzip.compress(fresh.read_bytes()))
    with pytest.raises(GlueFormatError, match=r"MRPC/train\.tsv and .*MRPC/train\.tsv\.gz are both there"):
        LocalSource(tmp_path, load_task("mrpc")).load("train")
