"""teacher=cross_encoder: a ready fine-tuned model (a plain sequence-classification folder or a
sentence-transformers CrossEncoder folder), read through `teacher.outputs`, used as it is (max_epochs 0)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from conftest import NO_DROPOUT, TINY_BERT, RecordTargets, make_cfg
from dse_lightning.config import load_task
from dse_lightning.logits import read_logits
from dse_lightning.models.teacher_module import TeacherModule
from dse_lightning.models.teacher_outputs import ClassLogits, OneLogit, Score
from dse_lightning.options import OptionError, teacher_source
from dse_lightning.pipeline.teacher import teacher_data, teacher_key
from dse_lightning.train import train

MRPC, STSB = load_task("mrpc"), load_task("stsb")


def save_classifier(out: Path, tokenizer_path: str, bias: list[float], crossencoder: bool = False) -> Path:
    """A tiny random BertForSequenceClassification whose head `bias` decides its (near constant) answer,
    saved with the MiniLM tokenizer as a plain folder, or re-saved as a sentence-transformers CrossEncoder."""
    config = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**config, **NO_DROPOUT, num_labels=len(bias)))
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor(bias))
    plain = out.with_name(out.name + "_plain") if crossencoder else out
    model.save_pretrained(plain)
    AutoTokenizer.from_pretrained(tokenizer_path).save_pretrained(plain)
    if crossencoder:
        from sentence_transformers import CrossEncoder

        CrossEncoder(str(plain), num_labels=len(bias)).save(str(out))
    return out


def ready_cfg(
    tmp_path: Path, data: Path, model: Path, *overrides: str, stage: str = "teacher", epochs: int = 0
) -> DictConfig:
    cfg = make_cfg(
        tmp_path, data, "run", f"stage={stage}", "teacher=cross_encoder", f"teacher.model={model}", *overrides
    )
    with open_dict(cfg):  # make_cfg's tiny random backbone and one epoch are for fitted teachers
        cfg.teacher.module.backbone = "${teacher.model}"
        cfg.teacher.max_epochs = epochs
    return cfg


def own_logits(model: Path, dm, ids: list[str]) -> torch.Tensor:
    """The model's logits (N, M) for train rows `ids`, computed here, pair by pair."""
    tokenizer, net = (
        AutoTokenizer.from_pretrained(model),
        BertForSequenceClassification.from_pretrained(model),
    )
    rows = {r["id"]: r for r in dm.raw("train")}
    with torch.no_grad():
        return torch.cat(
            [
                net(**tokenizer(rows[i]["sentence1"], rows[i]["sentence2"], return_tensors="pt")).logits
                for i in ids
            ]
        )


def exported(result, dm) -> tuple[list[str], torch.Tensor]:
    logits = read_logits(result.teacher.logits, dm.provenance(result.teacher.identity))
    return logits.ids, logits.values


@pytest.mark.parametrize(
    ("bias", "crossencoder", "overrides", "columns"),
    [
        ([0.0, 2.0], False, [], [0, 1]),  # a plain folder, outputs in the task's order
        ([2.0, 0.0], True, ["teacher.outputs.labels=[1,0]"], [1, 0]),  # a CrossEncoder, labels permuted
    ],
)
def test_a_ready_model_exports_its_own_logits_read_as_the_task_labels(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str, bias, crossencoder, overrides, columns
) -> None:
    model = save_classifier(tmp_path / "ce", tokenizer_path, bias, crossencoder)
    cfg = ready_cfg(tmp_path, mrpc_dir, model, *overrides)
    result = train(cfg)
    dm = teacher_data(cfg, MRPC)
    ids, values = exported(result, dm)
    torch.testing.assert_close(values[:5], own_logits(model, dm, ids[:5])[:, columns], atol=1e-5, rtol=1e-4)
    assert result.teacher.metrics["acc"] > 0.5  # it answers the majority label, "1"
    (weights,) = [i for i in result.teacher.inputs if i["option"] == "teacher.model"]
    assert weights["name"] == str(model) and len(weights["sha256"]) == 64
    assert (Path(result.teacher.logits).parent / "dev.logits.pt").is_file()


def test_a_binary_model_with_one_logit_gives_the_task_logits_0_and_z(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    model = save_classifier(tmp_path / "ce", tokenizer_path, [2.0], crossencoder=True)
    cfg = ready_cfg(tmp_path, mrpc_dir, model, "teacher/outputs=one_logit")
    result = train(cfg)
    dm = teacher_data(cfg, MRPC)
    ids, values = exported(result, dm)
    z = own_logits(model, dm, ids[:5])  # (5, 1)
    torch.testing.assert_close(values[:5], torch.cat([torch.zeros_like(z), z], -1), atol=1e-5, rtol=1e-4)


def test_a_ready_model_can_be_fine_tuned_further(tmp_path: Path, mrpc_dir: Path, tokenizer_path: str) -> None:
    model = save_classifier(tmp_path / "ce", tokenizer_path, [0.0, 2.0], crossencoder=True)
    cfg = ready_cfg(tmp_path, mrpc_dir, model, "teacher.module.optimizer.lr=0.01", epochs=1)
    result = train(cfg)
    dm = teacher_data(cfg, MRPC)
    ids, values = exported(result, dm)
    assert not torch.allclose(values[:5], own_logits(model, dm, ids[:5]), atol=1e-6)  # its weights moved
    assert result.teacher.metrics["acc"] > 0.5 and Path(result.teacher.checkpoint).is_file()


def test_a_plainly_wrong_label_order_is_refused_after_dev_naming_the_option(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    """The model answers "1" (the majority); read with the labels swapped it scores below chance on dev."""
    model = save_classifier(tmp_path / "ce", tokenizer_path, [0.0, 2.0])
    cfg = ready_cfg(tmp_path, mrpc_dir, model, "teacher.outputs.labels=[1,0]")
    expected = (
        r"teacher/outputs=classes .*below chance \(1/2\).*teacher\.outputs\.labels=\['0', '1'\] would give"
    )
    with pytest.raises(OptionError, match=expected):
        train(cfg)
    assert not [
        p for p in (tmp_path / "cache" / "teachers" / "mrpc").iterdir() if p.name[0] != "."
    ]  # nor work


def test_a_model_with_the_wrong_number_of_outputs_is_refused_before_any_work(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    model = save_classifier(tmp_path / "ce", tokenizer_path, [2.0], crossencoder=True)
    expected = r"teacher\.model=.*ce has 1 output\(s\) but teacher/outputs=classes reads 2 for task mrpc"
    with pytest.raises(OptionError, match=expected):
        train(ready_cfg(tmp_path, mrpc_dir, model))
    assert not (tmp_path / "cache").exists()  # nothing was read or tokenised
    with pytest.raises(ValueError, match=expected):  # a library caller's TeacherModule refuses it too
        TeacherModule(MRPC, str(model), optimizer=torch.optim.AdamW, outputs=ClassLogits())


def test_output_maps_read_a_score_on_its_own_scale_and_judge_it_on_dev() -> None:
    outputs = torch.tensor([[-30.0], [0.0], [30.0]])
    torch.testing.assert_close(
        Score([0, 1], sigmoid=True)(outputs, STSB), torch.tensor([[0.0], [2.5], [5.0]])
    )
    torch.testing.assert_close(Score(None)(outputs, STSB), outputs)
    labels = torch.tensor([0.5, 2.0, 3.5])
    assert Score([0, 1], sigmoid=True).problem(STSB, -outputs, labels).startswith("teacher/outputs=score")
    assert "Pearson correlation -1.000 is not above 0" in Score().problem(STSB, -outputs, labels)
    assert Score().problem(STSB, outputs, labels) is None
    first = OneLogit(positive="0")(torch.tensor([[3.0]]), MRPC)
    torch.testing.assert_close(first, torch.tensor([[0.0, -3.0]]))  # z is the logit of label "0"
    with pytest.raises(ValueError, match="teacher/outputs=score: task mrpc has labels"):
        Score().check(MRPC, 1, "m")
    with pytest.raises(ValueError, match=r"must name each label of task mrpc \(\['0', '1'\]\) once"):
        ClassLogits(["0", "2"]).check(MRPC, 2, "m")


def test_the_store_key_follows_the_weights_not_the_folder(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    model = save_classifier(tmp_path / "ce", tokenizer_path, [0.0, 2.0])
    moved = shutil.copytree(model, tmp_path / "elsewhere" / "renamed")

    def key(folder: Path) -> str:
        cfg = ready_cfg(tmp_path, mrpc_dir, folder)
        return teacher_key(cfg, teacher_data(cfg, MRPC), teacher_source(cfg).inputs(cfg))

    before = key(model)
    assert key(moved) == before
    save_classifier(moved, tokenizer_path, [0.0, 2.5])  # new weights in the same folder
    assert key(moved) != before


def test_the_online_teacher_reads_the_model_through_its_outputs(
    tmp_path: Path, mrpc_dir: Path, tokenizer_path: str
) -> None:
    """targets=online runs the TeacherModule, map included: its targets are the exported logits'."""
    RecordTargets.seen.clear()
    model = save_classifier(tmp_path / "ce", tokenizer_path, [2.0, 0.0])
    record = [
        "student.max_epochs=1",
        "student.encoder.hidden_dim=16",
        "+callbacks.record._target_=conftest.RecordTargets",
    ]
    cfg = ready_cfg(
        tmp_path, mrpc_dir, model, "teacher.outputs.labels=[1,0]", "targets=online", *record, stage="all"
    )
    result = train(cfg)
    ids, values = exported(result, teacher_data(cfg, MRPC))
    teacher = dict(zip(ids, MRPC.kind.student_targets(values), strict=True))  # z1 - z0 of the mapped logits
    assert set(RecordTargets.seen) == set(teacher)
    for i, seen in RecordTargets.seen.items():
        torch.testing.assert_close(seen, teacher[i], atol=1e-4, rtol=1e-4)
