"""Native towers: flatten pooling sees where things are; average pooling only what is there."""

from __future__ import annotations

import pytest
import torch

from cl_core.errors import CheckpointError
from cl_core.models.towers import ConvTower


def mirrored_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """The same square on the left and on the right of an image."""
    torch.manual_seed(0)
    left = torch.zeros(1, 1, 32, 32)
    left[..., 8:12, 4:8] = 1.0
    return left, torch.flip(left, dims=[-1])


def test_flatten_pooling_tells_positions_apart():
    left, right = mirrored_pair()
    flat = ConvTower(1, [4, 8], 8, pool="flatten", input_size=32).eval()
    avg = ConvTower(1, [4, 8], 8, pool="avg", input_size=32).eval()
    with torch.no_grad():
        assert not torch.allclose(flat(left), flat(right), atol=1e-4)
        assert flat.proj.in_features == 8 * 8 * 8
        assert avg.proj.in_features == 8


def test_unknown_pooling_is_refused():
    with pytest.raises(CheckpointError, match="pooling"):
        ConvTower(3, [4], 8, pool="max")


def test_both_pooling_keeps_layout_and_adds_the_global_average():
    left, right = mirrored_pair()
    both = ConvTower(1, [4, 8], 8, pool="both", input_size=32).eval()
    assert both.proj.in_features == 8 * 8 * 8 + 8
    with torch.no_grad():
        assert not torch.allclose(both(left), both(right), atol=1e-4)
        both.proj.weight[:, : 8 * 8 * 8] = 0.0  # with the layout weights off it is an average-pooled tower
        avg = ConvTower(1, [4, 8], 8, pool="avg", input_size=32).eval()
        avg.body.load_state_dict(both.body.state_dict())
        avg.proj.weight.copy_(both.proj.weight[:, 8 * 8 * 8:])
        avg.proj.bias.copy_(both.proj.bias)
        torch.testing.assert_close(both(left), avg(left), atol=1e-6, rtol=0)


def test_hidden_head_is_an_mlp_and_no_head_keeps_the_old_key_names():
    """Checkpoints written before the head existed (proj.weight) still load; a head adds proj.0/proj.2."""
    plain = ConvTower(3, [4, 8], 8, pool="avg", input_size=32)
    headed = ConvTower(3, [4, 8], 8, pool="avg", input_size=32, hidden=[16])
    assert {k for k in plain.state_dict() if k.startswith("proj")} == {"proj.weight", "proj.bias"}
    assert {k for k in headed.state_dict() if k.startswith("proj")} == {
        "proj.0.weight", "proj.0.bias", "proj.2.weight", "proj.2.bias"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = headed.body(x).mean(dim=(2, 3))
        expected = headed.proj[2](torch.nn.functional.gelu(headed.proj[0](feats)))
        torch.testing.assert_close(headed(x), expected)
