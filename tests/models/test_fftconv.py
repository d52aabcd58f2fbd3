"""The overlap-save convolution gives F.conv1d's values and gradients, whatever the block split."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from specsift.models.fftconv import FFTConv1d, block_length


def forced(c_in: int, c_out: int, kernel: int) -> FFTConv1d:
    """A layer on the FFT path even though it is narrow (small, fast float64 checks)."""
    layer = FFTConv1d(c_in, c_out, kernel).double()
    layer.use_fft = True
    return layer


@pytest.mark.parametrize("kernel", [7, 11, 21])
@pytest.mark.parametrize("length,batch", [(5, 2), (30, 3), (142, 4), (1000, 70)])
def test_values_and_gradients_match_direct_convolution(kernel, length, batch):
    torch.manual_seed(kernel + length)
    layer = forced(3, 5, kernel)
    x = torch.randn(batch, 3, length, dtype=torch.float64, requires_grad=True)
    ours = layer(x)
    theirs = F.conv1d(x, layer.weight, layer.bias, padding=kernel // 2)
    assert ours.shape == theirs.shape == (batch, 5, length)
    torch.testing.assert_close(ours, theirs)
    params = [x, layer.weight, layer.bias]
    for a, b in zip(torch.autograd.grad((ours.sin() * 3).sum(), params),
                    torch.autograd.grad((theirs.sin() * 3).sum(), params)):
        torch.testing.assert_close(a, b)


def test_float32_error_is_at_rounding_level():
    torch.manual_seed(1)
    layer = FFTConv1d(128, 256, 11)
    assert layer.use_fft
    x = torch.randn(2, 128, 400)
    with torch.no_grad():
        ours = layer(x)
        theirs = F.conv1d(x, layer.weight, layer.bias, padding=5)
    assert (ours - theirs).abs().max() < 1e-5 * theirs.abs().max()


def test_narrow_layers_stay_direct_and_state_matches_conv1d():
    assert not FFTConv1d(2, 128, 5).use_fft
    assert not FFTConv1d(16, 32, 11).use_fft
    layer = FFTConv1d(256, 512, 21)
    assert layer.use_fft
    plain = nn.Conv1d(256, 512, 21, padding=10)
    plain.load_state_dict(layer.state_dict())      # same keys and shapes both ways
    layer.load_state_dict(plain.state_dict())


def test_even_kernel_is_refused():
    with pytest.raises(ValueError, match="odd kernel"):
        FFTConv1d(4, 4, 6)


def test_block_length_keeps_outputs_per_block_and_short_signals():
    assert block_length(11, 1557) == 64        # three kernels fit; 54 new outputs per block
    assert block_length(21, 142) == 32         # a 64 block would leave 4 blocks, mostly padding
    for kernel in (7, 11, 21):
        for length in (1, 50, 10_000):
            n = block_length(kernel, length)
            assert n & (n - 1) == 0 and n > kernel
