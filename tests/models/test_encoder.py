"""The encoder's reordered convolution block computes exactly SPENDER's conv->norm->PReLU->pool."""

import pytest
import torch
from torch import nn

from specsift.models.encoder import ConvBlock


def spender_order(block: ConvBlock) -> nn.Sequential:
    """The textbook order, sharing the block's parameters."""
    layers = [block.conv, nn.InstanceNorm1d(block.conv.out_channels), block.act]
    if block.pool:
        layers.append(nn.MaxPool1d(block.pool, padding=block.pool // 2))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("slope", [0.25, -0.4])
@pytest.mark.parametrize("pool", [5, 11, 0])
def test_block_matches_spender_order_values_and_gradients(slope, pool):
    torch.manual_seed(0)
    block = ConvBlock(3, 8, 5, pool=pool)
    with torch.no_grad():
        block.act.weight.fill_(slope)
        block.act.weight[:2] = 0.1  # mixed signs across channels
    reference = spender_order(block)
    x = torch.randn(2, 3, 301, dtype=torch.float64, requires_grad=True)
    block, reference = block.double(), reference.double()
    ours, theirs = block(x), reference(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs)
    params = [x, block.conv.weight, block.conv.bias, block.act.weight]
    g_ours = torch.autograd.grad((ours.sin() * 3).sum(), params)
    g_theirs = torch.autograd.grad((theirs.sin() * 3).sum(), params)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x))

