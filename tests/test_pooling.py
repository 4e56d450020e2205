"""Pooling must depend only on the tokens it is meant to see."""

import pytest
import torch

from dse_lightning.models.components.pooling import Pooling, masked_max, masked_mean

B, L, H, NUM_LAYERS = 3, 6, 4, 5
MODES = ["cls", "mean", "max", "top_k_mean"]


@pytest.fixture
def batch():
    """Fake HF hidden states (embeddings + NUM_LAYERS layers) and a right-padded mask."""
    gen = torch.Generator().manual_seed(0)
    hidden = [torch.randn(B, L, H, generator=gen) for _ in range(NUM_LAYERS + 1)]
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    return hidden, mask


def _overwrite(hidden, positions, value):
    """Copy of the hidden states with positions (B, L) bool set to `value` in every layer."""
    return [h.masked_fill(positions.unsqueeze(-1), value) for h in hidden]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [1e4, -1e4])
def test_padding_values_do_not_matter(batch, mode, value):
    hidden, mask = batch
    pool = Pooling(mode, k=3)
    changed = _overwrite(hidden, mask == 0, value)
    torch.testing.assert_close(pool(changed, mask), pool(hidden, mask))


@pytest.mark.parametrize("mode", ["mean", "max", "top_k_mean"])
def test_excluded_cls_value_does_not_matter(batch, mode):
    hidden, mask = batch
    pool = Pooling(mode, k=3, exclude_cls=True)
    cls_pos = torch.zeros(B, L, dtype=torch.bool)
    cls_pos[:, 0] = True
    torch.testing.assert_close(pool(_overwrite(hidden, cls_pos, 1e4), mask), pool(hidden, mask))


@pytest.mark.parametrize("mode", ["mean", "top_k_mean"])
def test_included_cls_value_does_matter(batch, mode):
    """Guards the test above: with exclude_cls=False the same change must show up."""
    hidden, mask = batch
    pool = Pooling(mode, k=3, exclude_cls=False)
    cls_pos = torch.zeros(B, L, dtype=torch.bool)
    cls_pos[:, 0] = True
    assert not torch.allclose(pool(_overwrite(hidden, cls_pos, 1e4), mask), pool(hidden, mask))


@pytest.mark.parametrize("mode", MODES)
def test_extra_padding_does_not_change_output(batch, mode):
    hidden, mask = batch
    pool = Pooling(mode, k=3)
    extra = 4
    padded = [torch.cat([h, torch.randn(B, extra, H) * 100], dim=1) for h in hidden]
    padded_mask = torch.cat([mask, torch.zeros(B, extra, dtype=mask.dtype)], dim=1)
    torch.testing.assert_close(pool(padded, padded_mask), pool(hidden, mask))


def test_cls_mode_takes_last_layer_first_token(batch):
    hidden, mask = batch
    torch.testing.assert_close(Pooling("cls")(hidden, mask), hidden[-1][:, 0])


def test_top_k_mean_shape_and_hand_computed_values():
    # One sentence: [CLS] a b [SEP] <pad>; hidden size 2; 3 layers + embeddings.
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    layers = [torch.arange(10, dtype=torch.float).reshape(1, 5, 2) + 100 * i for i in range(4)]
    out = Pooling("top_k_mean", k=2, exclude_cls=True)(layers, mask)
    assert out.shape == (1, 2 * 2)
    # Positions 1..3 of layer i hold (2, 3), (4, 5), (6, 7) + 100 i -> mean (4, 5) + 100 i.
    # Last layer (i = 3) comes first, then layer i = 2.
    torch.testing.assert_close(out, torch.tensor([[304.0, 305.0, 204.0, 205.0]]))


def test_top_k_mean_batch_shape_and_output_dim(batch):
    hidden, mask = batch
    pool = Pooling("top_k_mean", k=4)
    assert pool(hidden, mask).shape == (B, 4 * H)
    assert pool.output_dim(H) == 4 * H
    assert Pooling("mean").output_dim(H) == H


def test_top_k_larger_than_depth_raises(batch):
    hidden, mask = batch
    with pytest.raises(ValueError, match="k=9"):
        Pooling("top_k_mean", k=9)(hidden, mask)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        Pooling("attention")


def test_masked_helpers_hand_values_and_empty_rows():
    x = torch.tensor([[[1.0, -5.0], [3.0, -1.0], [100.0, 100.0]], [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    torch.testing.assert_close(masked_mean(x, mask), torch.tensor([[2.0, -3.0], [0.0, 0.0]]))
    torch.testing.assert_close(masked_max(x, mask), torch.tensor([[3.0, -1.0], [0.0, 0.0]]))


def test_masked_max_padding_never_wins_even_when_all_valid_values_are_negative():
    x = torch.tensor([[[-3.0], [-2.0], [0.0]]])  # padding holds 0, larger than every real value
    assert masked_max(x, torch.tensor([[1, 1, 0]])).item() == -2.0
