"""Intermediate-layer distillation: the hidden-state term, its checks, and a student trained with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel

from conftest import MRPC_HEADER, NO_DROPOUT, TINY_BERT, make_cfg, mrpc_rows, write_tsv
from dse_lightning.models.components.intermediate import ATTENTION, HiddenStateMatch
from dse_lightning.train import train

CONFIG = {k: v for k, v in TINY_BERT.items() if k != "model_type"}


def bert(layers: int, seed: int) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(**{**CONFIG, "num_hidden_layers": layers}, **NO_DROPOUT)).eval()


def features(lengths: list[int]) -> dict[str, torch.Tensor]:
    """Right-padded token ids of the given lengths."""
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.arange(100, 100 + n)
    return {"input_ids": ids, "attention_mask": (ids > 0).long(), "token_type_ids": torch.zeros_like(ids)}


def states(model: BertModel, feats: dict) -> tuple[torch.Tensor, ...]:
    return model(**feats, output_hidden_states=True).hidden_states


def test_the_term_is_zero_on_the_source_itself_and_reads_only_real_tokens() -> None:
    source, feats = bert(4, 0), features([5, 3])
    match = HiddenStateMatch(source, [[2, 2], [4, 4]])
    assert match(states(source, feats), feats)["hidden"].item() == pytest.approx(0.0, abs=1e-10)
    other = HiddenStateMatch(source, [[1, 2], [2, 4]])
    student_states = [s.detach().clone().requires_grad_(True) for s in states(bert(2, 1), feats)]
    term = other(student_states, feats)["hidden"]
    assert term.item() > 0
    term.backward()  # into the student's states, not into the frozen source
    assert student_states[1].grad is not None and student_states[1].grad[1, 3:].abs().sum() == 0  # padding
    assert all(p.grad is None and not p.requires_grad for p in source.parameters())
    padded = [s.clone() for s in student_states]
    for s in padded:
        s.data[1, 3:] += 100.0  # what a padded position holds does not count
    assert other(padded, feats)["hidden"].item() == pytest.approx(term.item())
    match.train()
    assert not match.source.training  # frozen: eval mode whatever the module is asked


def test_a_mapping_the_models_cannot_meet_is_refused() -> None:
    source = bert(4, 0)
    with pytest.raises(ValueError, match=r"intermediate.layers: \[3, 4\] but the student has 2 layers"):
        HiddenStateMatch(source, [[3, 4]]).check(bert(2, 0))
    with pytest.raises(ValueError, match=r"\[1, 5\] but the student has 2 layers and the source 4"):
        HiddenStateMatch(source, [[1, 5]]).check(bert(2, 0))
    wide = BertModel(BertConfig(**{**CONFIG, "hidden_size": 64}))
    with pytest.raises(ValueError, match="intermediate.source: hidden size 32 .* student's 64"):
        HiddenStateMatch(source, [[1, 2]]).check(wide)
    with pytest.raises(ValueError, match="must map at least one layer"):
        HiddenStateMatch(source, [])


def glue(tmp_path: Path) -> Path:
    write_tsv(tmp_path / "g/MRPC/train.tsv", MRPC_HEADER, mrpc_rows(32), bom=True)
    write_tsv(tmp_path / "g/MRPC/dev.tsv", MRPC_HEADER, mrpc_rows(8), bom=True)
    return tmp_path / "g"


def test_a_shallow_student_trains_with_the_term_of_a_deeper_source(
    tmp_path: Path, tiny_backbone: Path
) -> None:
    """`intermediate=hidden`: a 2-layer dse student matched to a saved 4-layer encoder (its layers 2 and 4);
    another student than without the term (the key names the source by its weights), the source not in the
    export."""
    data = glue(tmp_path)
    common = [
        "student=dse",
        "student.max_epochs=1",
        "student.encoder.num_layers=2",
        "student.encoder.pooling.k=2",
    ]
    plain = train(make_cfg(tmp_path, data, "plain", *common))
    matched = train(
        make_cfg(
            tmp_path, data, "matched", *common, "intermediate=hidden", f"intermediate.source={tiny_backbone}",
            "intermediate.layers=[[1,2],[2,4]]",
        )
    )  # fmt: skip
    assert matched.student.key != plain.student.key and matched.teacher.key == plain.teacher.key
    export = Path(matched.student.export)
    assert AutoModel.from_pretrained(export).config.num_hidden_layers == 2  # the student only
    # attention matched too: another student again; trained with eager attention, exported for any
    attended = train(
        make_cfg(
            tmp_path, data, "attended", *common, "intermediate=hidden",
            f"intermediate.source={tiny_backbone}", "intermediate.layers=[[1,2],[2,4]]",
            "intermediate.attention_weight=1.0",
        )
    )  # fmt: skip
    assert attended.student.key not in (plain.student.key, matched.student.key)
    config = (Path(attended.student.export) / "config.json").read_text()
    assert "eager" not in config and ATTENTION not in config  # the export serves with the default kind


def test_intermediate_needs_a_transformer_student(tmp_path: Path, tiny_backbone: Path) -> None:
    cfg = make_cfg(
        tmp_path,
        glue(tmp_path),
        "r",
        "student=bilstm",
        "intermediate=hidden",
        f"intermediate.source={tiny_backbone}",
    )
    with pytest.raises(Exception, match="intermediate: hidden states to match need a transformer student"):
        train(cfg)  # before the teacher is fitted
    assert not (tmp_path / "cache" / "teachers").exists()
    missing = make_cfg(
        tmp_path, glue(tmp_path), "r", "student=dse", "intermediate=hidden", "intermediate.source=/no/x"
    )
    with pytest.raises(Exception, match="intermediate.source=/no/x: no such folder"):
        train(missing)


def attentions(model: BertModel, feats: dict) -> tuple[torch.Tensor, ...]:
    return model(**feats, output_attentions=True).attentions


def test_the_attention_term_is_zero_on_the_source_and_reads_only_real_queries() -> None:
    """attention_weight > 0: KL from the source's attention distributions to the student's, over real query
    tokens; both run eager attention (the only kind that returns its weights)."""
    source, feats = bert(4, 0), features([5, 3])
    match = HiddenStateMatch(source, [[2, 2], [4, 4]], weight=0.0, attention_weight=1.0)
    assert source.config._attn_implementation == ATTENTION
    terms = match(states(source, feats), feats, attentions(source, feats))
    assert terms["attention"].item() == pytest.approx(0.0, abs=1e-6) and match.total(terms).item() < 1e-6
    student = bert(2, 1)
    student.set_attn_implementation(ATTENTION)
    student.train()  # dropout on: the weights matched are the distribution before it
    other = HiddenStateMatch(source, [[0, 0], [1, 2], [2, 4]], weight=2.0, attention_weight=3.0)
    weights = [a.detach().clone().requires_grad_(True) for a in attentions(student, feats)]
    terms = other(states(student, feats), feats, weights)
    assert terms["attention"].item() > 0
    assert other.total(terms).item() == pytest.approx(
        2 * terms["hidden"].item() + 3 * terms["attention"].item()
    )
    terms["attention"].backward()
    assert weights[0].grad[1, :, 3:].abs().sum() == 0 and weights[0].grad[1, :, :3].abs().sum() > 0  # padding
    with pytest.raises(ValueError, match="the student's attention weights are needed"):
        other(states(student, feats), feats)
    with pytest.raises(ValueError, match=r"layers=\[\[0, 0\]\] map no layer with attention weights"):
        HiddenStateMatch(source, [[0, 0]], attention_weight=1.0)
    with pytest.raises(ValueError, match="one of them > 0"):
        HiddenStateMatch(source, [[1, 2]], weight=0.0)


def test_the_matched_attention_kind_returns_the_weights_before_dropout() -> None:
    """transformers' eager attention returns its weights after dropout (zeros, rows not summing to 1);
    ATTENTION computes the same output and returns the softmax itself."""
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(**{**CONFIG, "num_hidden_layers": 2, "attention_probs_dropout_prob": 0.5})
    ).train()
    feats = features([5, 3])
    runs = {}
    for kind in ("eager", ATTENTION):
        model.set_attn_implementation(kind)
        torch.manual_seed(1)  # the same dropout draws
        runs[kind] = model(**feats, output_attentions=True)
    assert torch.allclose(runs[ATTENTION].last_hidden_state, runs["eager"].last_hidden_state, atol=1e-6)
    ones = torch.ones(2, CONFIG["num_attention_heads"], 5)
    assert torch.allclose(runs[ATTENTION].attentions[0].sum(-1), ones, atol=1e-5)
    assert not torch.allclose(runs["eager"].attentions[0].sum(-1), ones, atol=1e-2)
