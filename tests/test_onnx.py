"""ONNX fp32 / int8 encoders inside a student export: equal to the torch export, covered by its manifest.
One export with its ONNX graphs and one with its OpenVINO graphs are built per module and shared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from conftest import MRPC_HEADER, mrpc_rows, write_tsv
from dse_lightning import load_student
from dse_lightning.export import export_student
from dse_lightning.export.onnx import FILES, add_onnx, main
from dse_lightning.utils.io import CorruptArtifactError
from test_distill import MRPC, tiny_student

pytest.importorskip("onnxruntime")
A = ["A man is playing a guitar.", "Shares of the company rose 5 percent on Monday, analysts said."]
B = ["Someone plays guitar.", "The cat sleeps."]


@pytest.fixture(scope="module")
def export(tokenizer_path: str, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    out = export_student(
        tmp_path_factory.mktemp("onnx") / "export", tiny_student("dse").eval(), tok, MRPC, 32
    )
    assert main([str(out)]) == 0  # the CLI adds both graphs
    return out


def served_like_torch(export: Path, fp32_backend: str, int8_backend: str):
    """The two graph backends loaded, after checking them against the torch export: fp32 equal to it,
    int8 close (an approximation). Other batch sizes and lengths than the traced example: dynamic axes."""
    ref = load_student(export)
    fp32, int8 = load_student(export, fp32_backend), load_student(export, int8_backend)
    torch.testing.assert_close(fp32.encode(A + B), ref.encode(A + B), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fp32.score(A, B), ref.score(A, B), atol=1e-4, rtol=1e-4)
    cos = torch.nn.functional.cosine_similarity(int8.encode(A + B), ref.encode(A + B))
    assert cos.min() > 0.99, cos
    return fp32, int8


def test_onnx_encoders_match_the_torch_export(export: Path) -> None:
    served_like_torch(export, "onnx", "onnx-int8")
    assert (export / FILES["onnx-int8"]).stat().st_size < (export / FILES["onnx"]).stat().st_size / 2


def test_onnx_files_are_verified_and_missing_ones_named(export: Path, tmp_path: Path, tokenizer_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(export, broken)
    graph = broken / FILES["onnx-int8"]
    graph.write_bytes(graph.read_bytes()[:-16])
    with pytest.raises(CorruptArtifactError, match=r"model_qint8\.onnx: sha256"):
        load_student(broken, "onnx-int8")
    # only its own backend refuses; the export command writes it again
    torch.testing.assert_close(load_student(broken, "onnx").encode(A), load_student(export, "onnx").encode(A))
    torch.testing.assert_close(load_student(broken).encode(A), load_student(export).encode(A))
    add_onnx(broken, backends=["onnx"])  # the bad graph is not carried into the new version as good
    with pytest.raises(FileNotFoundError, match=r"backend='onnx-int8' but the export has no such graph"):
        load_student(broken, "onnx-int8")
    assert main([str(broken)]) == 0
    load_student(broken, "onnx-int8")
    plain = export_student(
        tmp_path / "plain", tiny_student("dse"), AutoTokenizer.from_pretrained(tokenizer_path), MRPC, 32
    )
    with pytest.raises(FileNotFoundError, match=r"no such graph encoder; add it with .*export\.onnx"):
        load_student(plain, "onnx-int8")
    with pytest.raises(ValueError, match=r"backend='int4': expected one of"):
        load_student(plain, "int4")
    bilstm = export_student(
        tmp_path / "bilstm", tiny_student("bilstm"), AutoTokenizer.from_pretrained(tokenizer_path), MRPC, 32
    )
    with pytest.raises(ValueError, match="ONNX export is for transformer students"):
        add_onnx(bilstm)


def test_score_cli_with_the_int8_encoder_keeps_its_own_store(export: Path, tmp_path: Path) -> None:
    import json

    from dse_lightning.score import main as score_main
    from dse_lightning.scoring.store import student_identity

    cands = tmp_path / "cands.txt"
    cands.write_text("\n".join(A + B) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["--student", str(export), "--candidates", str(cands), "--query", A[0], "--top-k", "2"]
    score_main([*args, "--store", str(tmp_path / "int8"), "--backend", "onnx-int8", "--output", str(out)])
    hits = json.loads(out.read_text())["hits"]
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"] and hits[0]["sentence"] in A + B
    # the int8 embeddings are not the torch ones: a store of one is not taken for the other
    assert student_identity(export, "onnx-int8") != student_identity(export)


def test_evaluate_export_scores_the_dev_split_as_served(export: Path, mrpc_dir: Path) -> None:
    from dse_lightning.config import load_task
    from dse_lightning.data.sources import resolve_source
    from dse_lightning.export.evaluate import evaluate_export

    rows = resolve_source(load_task("mrpc"), str(mrpc_dir)).load("dev")
    p = load_student(export).score(list(rows["sentence1"]), list(rows["sentence2"]))
    labels = torch.tensor(rows["label"])
    expected_acc = float(((p > 0.5).long() == labels).float().mean())  # by hand, not through torchmetrics
    for backend in ("torch", "onnx"):
        metrics = evaluate_export(export, "mrpc", backend, data_dir=str(mrpc_dir))
        assert set(metrics) == {"acc", "f1"} and metrics["acc"] == pytest.approx(expected_acc, abs=1e-6)
    with pytest.raises(ValueError, match="exported for a binary task .* not task 'stsb'"):
        evaluate_export(export, "stsb", data_dir=str(mrpc_dir))
    with pytest.raises(ValueError, match="split='train': task 'mrpc' evaluates on"):
        evaluate_export(export, "mrpc", split="train", data_dir=str(mrpc_dir))


@pytest.fixture(scope="module")
def ov_export(export: Path, tmp_path_factory) -> Path:
    """The export with its OpenVINO graphs, added by the export CLI and calibrated on 20 of the task's
    train sentences (`<folder>/glue`, beside it)."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    root = tmp_path_factory.mktemp("openvino")
    write_tsv(root / "glue/MRPC/train.tsv", MRPC_HEADER, mrpc_rows(48), bom=True)
    write_tsv(root / "glue/MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(16), bom=True)
    out = root / "export"
    shutil.copytree(export, out)
    cli = [str(out), "--openvino", "mrpc", "--data-dir", str(root / "glue"), "--calibration-size", "20"]
    assert main(cli) == 0
    return out


def test_openvino_encoders_match_the_torch_export(ov_export: Path) -> None:
    from dse_lightning.scoring.store import student_identity

    fp32, _ = served_like_torch(ov_export, "openvino", "openvino-int8")
    calibration = fp32.spec["calibration"]
    assert calibration["source"] == "mrpc/train, seed 0" and calibration["sentences"] == 20
    # each backend's store identity covers its own graphs: OpenVINO, ONNX and torch stores stay apart
    ids = {b: student_identity(ov_export, b) for b in ("torch", "onnx-int8", "openvino", "openvino-int8")}
    assert len(set(ids.values())) == 4
    again = add_onnx(ov_export)  # the ONNX graphs again, no calibration: the OpenVINO ones stay served
    assert set(again["onnx"]) == set(FILES) and again["calibration"] == calibration
    torch.testing.assert_close(load_student(ov_export, "openvino").encode(A), fp32.encode(A))


def test_openvino_graphs_are_verified_and_missing_ones_named(
    ov_export: Path, export: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(ov_export, broken)
    weights = broken / FILES["openvino-int8"].replace(".xml", ".bin")
    weights.write_bytes(weights.read_bytes()[:-16])
    with pytest.raises(CorruptArtifactError, match=r"openvino_model_qint8_quantized\.bin: sha256"):
        load_student(broken, "openvino-int8")
    with pytest.raises(
        FileNotFoundError, match=r"no such graph encoder; add it with .*export\.onnx .* --openvino TASK"
    ):
        load_student(export, "openvino-int8")  # ONNX graphs only


def test_onnx_cli_calibrates_openvino_on_the_tasks_train_sentences(ov_export: Path) -> None:
    from dse_lightning.export.calibration import calibration_inputs

    data = str(ov_export.parent / "glue")  # what the fixture's CLI call calibrated on
    calibration = load_student(ov_export, "openvino-int8").spec["calibration"]
    sample = calibration_inputs("mrpc", data, 20)
    assert calibration["source"] == "mrpc/train, seed 0" and calibration["sentences"] == len(sample) == 20
    assert sample == calibration_inputs("mrpc", data, 20)  # seeded: the same sample again
    assert len(set(sample)) == 20 and set(sample) <= {s for r in mrpc_rows(48) for s in r[3:]}  # train's
