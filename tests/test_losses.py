"""Loss math checked against hand values and torch.nn.functional references."""

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from dse_lightning.config import CONFIG_DIR
from dse_lightning.data.task_kinds import TASK_KINDS, reduce_binary_logits
from dse_lightning.data.tasks import TaskSpec
from dse_lightning.losses import KL, MSE, auto, distill_kl, distill_mse

BINARY, MULTICLASS, REGRESSION = (TASK_KINDS[k] for k in ("binary", "multiclass", "regression"))


def task_loss(logits, labels, task_type):
    return TASK_KINDS[task_type].task_loss(logits, labels)


def test_reduce_binary_logits_hand_values():
    logits = torch.tensor([[1.0, 3.0], [2.0, -1.0], [0.5, 0.5]])
    torch.testing.assert_close(reduce_binary_logits(logits), torch.tensor([2.0, -3.0, 0.0]))


def test_reduced_logit_sigmoid_equals_softmax_positive_class():
    logits = torch.randn(16, 2, generator=torch.Generator().manual_seed(0)) * 4
    torch.testing.assert_close(torch.sigmoid(reduce_binary_logits(logits)), logits.softmax(-1)[:, 1])


@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 2, 2)])
def test_reduce_binary_logits_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        reduce_binary_logits(torch.zeros(shape))


def test_task_loss_binary_matches_bce_for_both_logit_shapes():
    logits = torch.tensor([0.3, -1.2, 2.0])
    labels = torch.tensor([1, 0, 0])
    expected = F.binary_cross_entropy_with_logits(logits, labels.float())
    torch.testing.assert_close(task_loss(logits, labels, "binary"), expected)
    torch.testing.assert_close(task_loss(logits.unsqueeze(-1), labels, "binary"), expected)


def test_task_loss_multiclass_matches_cross_entropy():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.3, 2.0]])
    labels = torch.tensor([0, 2])
    torch.testing.assert_close(task_loss(logits, labels, "multiclass"), F.cross_entropy(logits, labels))


def test_task_loss_regression_matches_mse():
    scores = torch.tensor([[1.0], [2.5], [4.0]])
    labels = torch.tensor([1.5, 2.5, 3.0])
    torch.testing.assert_close(task_loss(scores, labels, "regression"), torch.tensor((0.25 + 0 + 1) / 3))


def test_task_loss_unknown_task_and_bad_binary_shape():
    with pytest.raises(ValueError, match=r"type must be one of \['binary', 'multiclass', 'regression'\]"):
        TaskSpec.from_config(
            {**OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "task/mrpc.yaml")), "type": "ranking"}
        )
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        task_loss(torch.zeros(2, 2), torch.zeros(2), "binary")


def test_distill_mse_sums_outputs_and_averages_batch():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    # row 0: 0 + 4 + 9 = 13; row 1: 1 + 1 + 1 = 3; mean over 2 rows = 8 (F.mse_loss would give 8/3).
    assert distill_mse(student, teacher).item() == pytest.approx(8.0)
    # (B,) and (B, 1) are interchangeable for one-output tasks.
    s1, t1 = torch.tensor([1.0, 3.0]), torch.tensor([[0.0], [1.0]])
    assert distill_mse(s1, t1).item() == pytest.approx((1 + 4) / 2)


def test_distill_mse_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ"):
        distill_mse(torch.zeros(2, 3), torch.zeros(2, 2))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_distill_kl_zero_when_student_equals_teacher(temperature):
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    assert distill_kl(logits, logits.clone(), temperature).item() == pytest.approx(0.0, abs=1e-6)


def test_distill_kl_matches_hand_formula_with_temperature_squared():
    gen = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    for temperature in (1.0, 3.0):
        p_t = (teacher / temperature).softmax(-1)
        p_s = (student / temperature).softmax(-1)
        kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()
        expected = kl * temperature**2
        torch.testing.assert_close(distill_kl(student, teacher, temperature), expected)
    # Scaling all logits by T leaves the softmaxes at T unchanged, so the loss scales by exactly T^2.
    base = distill_kl(student, teacher, 1.0)
    torch.testing.assert_close(distill_kl(student * 3, teacher * 3, 3.0), base * 9)


def test_distill_kl_binary_one_logit_is_two_class_bernoulli_kl():
    student, teacher = torch.tensor([0.5, -1.0]), torch.tensor([[2.0], [0.0]])
    p_s, p_t = torch.sigmoid(student), torch.sigmoid(teacher.squeeze(-1))
    kl = p_t * (p_t / p_s).log() + (1 - p_t) * ((1 - p_t) / (1 - p_s)).log()
    torch.testing.assert_close(distill_kl(student, teacher, 1.0), kl.mean())


def _binary_batch():
    student = torch.tensor([[0.3], [-1.0], [2.0], [0.0]])
    labels = torch.tensor([1, 0, 1, 1])
    teacher = torch.tensor([1.0, -2.0, 3.0, -0.5])
    return student, labels, teacher


def test_alpha_zero_is_exactly_task_loss_without_teacher():
    student, labels, _ = _binary_batch()
    out = MSE(BINARY, alpha=0.0)(student, labels)
    expected = task_loss(student, labels, "binary")
    assert torch.equal(out["loss"], expected)
    assert torch.equal(out["task"], expected)
    assert out["distill"].item() == 0.0


@pytest.mark.parametrize("kind", ["mse", "kl"])
def test_alpha_one_is_exactly_distill_loss(kind):
    student, labels, teacher = _binary_batch()
    loss = MSE(BINARY, alpha=1.0) if kind == "mse" else KL(BINARY, alpha=1.0, temperature=2.0)
    out = loss(student, labels, teacher)
    expected = distill_mse(student, teacher) if kind == "mse" else distill_kl(student, teacher, 2.0)
    assert torch.equal(out["loss"], expected)
    assert torch.equal(out["distill"], expected)


def test_mixed_alpha_combines_terms_and_gradient_skips_teacher():
    student, labels, teacher = _binary_batch()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    out = MSE(BINARY, alpha=0.25)(student, labels, teacher)
    torch.testing.assert_close(out["loss"], 0.75 * out["task"] + 0.25 * out["distill"])
    out["loss"].backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_multiclass_distill_loss():
    student = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1])
    out = MSE(MULTICLASS, alpha=0.5)(student, labels, teacher)
    assert out["distill"].item() == pytest.approx((1 + 4) / 2)
    assert out["loss"].item() == pytest.approx(0.5 * F.cross_entropy(student, labels).item() + 1.25)


def test_alpha_positive_without_teacher_raises():
    student, labels, _ = _binary_batch()
    with pytest.raises(ValueError, match="needs teacher logits"):
        MSE(BINARY, alpha=0.5)(student, labels)


def test_rows_without_a_gold_label_count_in_the_distillation_term_only():
    student, labels, teacher = _binary_batch()
    has_label = torch.tensor([True, False, True, False])
    out = MSE(BINARY, alpha=0.5)(student, labels, teacher, has_label)
    torch.testing.assert_close(out["task"], task_loss(student[has_label], labels[has_label], "binary"))
    torch.testing.assert_close(out["distill"], distill_mse(student, teacher))  # every row
    none = MSE(BINARY, alpha=0.5)(student, labels, teacher, torch.zeros(4, dtype=torch.bool))
    assert none["task"].item() == 0.0 and torch.equal(none["loss"], 0.5 * none["distill"])
    every = MSE(BINARY, alpha=0.5)(student, labels, teacher, torch.ones(4, dtype=torch.bool))
    assert torch.equal(every["loss"], MSE(BINARY, alpha=0.5)(student, labels, teacher)["loss"])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MSE(BINARY, alpha=-0.1), r"alpha must be in \[0, 1\]"),
        (lambda: MSE(BINARY, alpha=1.5), r"alpha must be in \[0, 1\]"),
        (lambda: MSE(BINARY, alpha=math.nan), "alpha"),
        (lambda: KL(BINARY, temperature=0.0), "temperature must be > 0"),
        (lambda: KL(REGRESSION), "distill=kl: a regression task has no class logits; use distill=mse"),
    ],
)
def test_invalid_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(("task_type", "expected"), [("binary", KL), ("multiclass", KL), ("regression", MSE)])
def test_auto_is_kl_for_classes_and_mse_for_regression(task_type, expected):
    loss = auto(TASK_KINDS[task_type], temperature=2.0)
    assert type(loss) is expected and loss.describe()["kind"] == expected.name
