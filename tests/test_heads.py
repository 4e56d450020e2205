"""Pair heads: shapes, the fixed feature-block order, and (u, v) symmetry."""

import pytest
import torch

from dse_lightning.models.components.heads import ConcatHead, DotHead

B, D = 5, 8


@pytest.fixture
def uv():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen)


@pytest.mark.parametrize("num_outputs", [1, 3])
def test_concat_head_shapes(uv, num_outputs):
    head = ConcatHead(D, num_outputs, hidden_dim=16)
    assert head(*uv).shape == (B, num_outputs)
    assert head.fc1.weight.shape == (16, 4 * D)
    assert head.fc2.weight.shape == (num_outputs, 16)


def test_concat_features_equal_hand_built_cat(uv):
    u, v = uv
    expected = torch.cat([u, v, u * v, (u - v).abs()], dim=-1)
    torch.testing.assert_close(ConcatHead(D, 1).features(u, v), expected)


def test_concat_features_swap_only_first_two_blocks(uv):
    u, v = uv
    head = ConcatHead(D, 1)
    fwd, bwd = head.features(u, v), head.features(v, u)
    blocks_f, blocks_b = fwd.split(D, dim=-1), bwd.split(D, dim=-1)
    torch.testing.assert_close(blocks_b[0], blocks_f[1])
    torch.testing.assert_close(blocks_b[1], blocks_f[0])
    torch.testing.assert_close(blocks_b[2], blocks_f[2])
    torch.testing.assert_close(blocks_b[3], blocks_f[3])
    assert not torch.allclose(fwd, bwd)


def test_concat_head_is_fc2_relu_fc1_in_eval(uv):
    u, v = uv
    head = ConcatHead(D, 2, hidden_dim=16, dropout=0.5).eval()
    feats = torch.cat([u, v, u * v, (u - v).abs()], dim=-1)
    expected = head.fc2(torch.relu(head.fc1(feats)))
    torch.testing.assert_close(head(u, v), expected)


def test_dot_head_shape_and_exact_symmetry(uv):
    u, v = uv
    head = DotHead(D)
    out = head(u, v)
    assert out.shape == (B, 1)
    assert torch.equal(out, head(v, u))


@pytest.mark.parametrize("normalize", [True, False])
def test_dot_head_value(uv, normalize):
    u, v = uv
    head = DotHead(D, init_scale=2.0, normalize=normalize)
    with torch.no_grad():
        head.bias.fill_(0.5)
    dot = torch.nn.functional.cosine_similarity(u, v) if normalize else (u * v).sum(-1)
    torch.testing.assert_close(head(u, v), (2.0 * dot + 0.5).unsqueeze(-1))
    assert {n for n, _ in head.named_parameters()} == {"scale", "bias"}


@pytest.mark.parametrize("num_outputs", [0, 2, 3])
def test_dot_head_rejects_multiple_outputs(num_outputs):
    with pytest.raises(ValueError, match="binary and regression"):
        DotHead(D, num_outputs=num_outputs)
