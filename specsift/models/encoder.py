"""Spectrum encoder: convolutions, attention pooling over wavelength, then an MLP to the latents.

Why attention pooling: a spectral feature (a line, a break) carries the same information wherever
the redshift puts it on the detector; a softmax over wavelength lets the network pick the features
wherever they are, instead of tying latents to fixed pixels (the root of redshift dependence).

References:
    | Autoencoding Galaxy Spectra I: Architecture (Melchior et al., 2023)
    | https://arxiv.org/abs/2211.07890
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .fftconv import FFTConv1d

__all__ = ["ConvBlock", "SpectrumEncoder", "mlp"]


def mlp(sizes: list[int], activation=nn.LeakyReLU) -> nn.Sequential:
    """Linear layers through ``sizes`` with an activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _pool(y: torch.Tensor, window: int, with_min: bool, indices: bool):
    """Max-pool and (``with_min``) min-pool of ``y``: ``(high, high_at), (low, low_at)``, with
    None for what was not asked (indices are only kept for the backward pass)."""
    def max_pool(signal):
        out = F.max_pool1d(signal, window, padding=window // 2, return_indices=indices)
        return out if indices else (out, None)

    if not with_min:
        return max_pool(y), (None, None)
    low, low_at = max_pool(-y)
    return max_pool(y), (-low, low_at)


def _at_least_float32(y: torch.Tensor) -> torch.dtype:
    return torch.promote_types(y.dtype, torch.float32)


def _statistics(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance over the last axis, at least float32 (subtract first: E[y^2] -
    mean^2 would cancel), one batched dot product instead of torch.var_mean's slow Welford pass."""
    mean = y.mean(-1, keepdim=True, dtype=_at_least_float32(y))
    centred = (y - mean).unsqueeze(-2)
    return mean, (centred @ centred.transpose(-1, -2)).squeeze(-1) / y.shape[-1]


class _PoolWithStatistics(torch.autograd.Function):
    """Max-pool (and, on request, min-pool) a signal and give its mean and variance over all of it.

    Why a custom function: on a CPU, ``torch.var_mean`` (Welford) and the composite backward of
    the statistics and of the pooling cost several times the convolution before them. Here the
    forward reads the full-resolution signal a few times and the backward writes its gradient
    once (a fused multiply-add for the statistics, plus a scatter of the pooled gradients).
    Statistics are at least float32 whatever the signal's dtype (bf16 under GPU autocast).
    """

    @staticmethod
    def forward(ctx, y, window: int, with_min: bool):
        (high, high_at), (low, low_at) = _pool(y, window, with_min, indices=True)
        mean, var = _statistics(y)
        ctx.save_for_backward(y, mean, high_at, low_at)
        return high, low, mean, var

    @staticmethod
    def backward(ctx, grad_high, grad_low, grad_mean, grad_var):
        y, mean, high_at, low_at = ctx.saved_tensors
        scale = grad_var * (2.0 / y.shape[-1])  # d var / d y = 2 (y - mean) / n
        grad = torch.addcmul(grad_mean / y.shape[-1] - scale * mean, y, scale).to(y.dtype)
        grad.scatter_add_(-1, high_at, grad_high.to(y.dtype))
        if low_at is not None:
            grad.scatter_add_(-1, low_at, grad_low.to(y.dtype))
        return grad, None, None


class ConvBlock(nn.Module):
    """SPENDER's block, convolution -> instance norm -> PReLU -> max-pool, in a cheaper order.

    Why: at full resolution the element-wise norm and PReLU (and their backward passes) cost as
    much as the convolutions on a CPU. The result is the same when they run after the pooling:
    instance norm is an increasing affine map per channel (its mean and variance still come from
    the full-resolution signal), so it commutes with a max; PReLU is monotonic on each side of 0,
    so the maximum of ``prelu`` over a window is ``prelu`` of the window's maximum or, for a
    negative slope, of its minimum. Only the convolution, the statistics and the pooling touch
    full-resolution data.

    Arguments:
        c_in, c_out: channels. kernel: convolution size (padding keeps the length).
        pool: max-pool window (stride = window, padding = window // 2, as SPENDER); 0 for none.
    """

    eps = 1e-5  # as nn.InstanceNorm1d

    def __init__(self, c_in: int, c_out: int, kernel: int, pool: int = 0):
        super().__init__()
        self.conv = FFTConv1d(c_in, c_out, kernel)
        self.act = nn.PReLU(c_out)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if not self.pool:
            return self.act(F.instance_norm(y.to(_at_least_float32(y)), eps=self.eps))
        negative_slope = bool((self.act.weight < 0).any())
        if y.requires_grad:
            high, low, mean, var = _PoolWithStatistics.apply(y, self.pool, negative_slope)
        else:  # inference or a frozen encoder: no indices to keep, the fast pooling kernel
            (high, _), (low, _) = _pool(y, self.pool, negative_slope, indices=False)
            mean, var = _statistics(y)
        scale = torch.rsqrt(var + self.eps)
        out = self.act((high - mean) * scale)
        if negative_slope:  # the negative side can hold the window's maximum
            out = torch.maximum(out, self.act((low - mean) * scale))
        return out


class SpectrumEncoder(nn.Module):
    """Map an observed spectrum (flux, which pixels are valid, redshift) to ``n_latent`` numbers.

    Arguments:
        n_latent: size S of the latent vector.
        channels: output channels of the convolution blocks (the last is split in half: values
            and attention keys).
        kernels: kernel size of each block; blocks but the last are followed by max-pooling with
            the same size (stride = size), as in SPENDER.
        hidden: hidden layer sizes of the MLP from the pooled features (+ redshift) to latents.

    The input has two channels: the flux (0 on masked pixels) and the valid-pixel indicator, so the
    network can tell "no flux" from "no data".
    """

    def __init__(self, n_latent: int, channels: list[int], kernels: list[int], hidden: list[int]):
        super().__init__()
        if len(channels) != len(kernels) or channels[-1] % 2:
            raise ValueError("need one kernel per block and an even number of last channels")
        last = len(channels) - 1
        self.convs = nn.Sequential(*(
            ConvBlock(2 if i == 0 else channels[i - 1], c_out, k, pool=0 if i == last else k)
            for i, (c_out, k) in enumerate(zip(channels, kernels))))
        self.n_feature = channels[-1] // 2
        self.mlp = mlp([self.n_feature + 1, *hidden, n_latent])

    def forward(self, flux: torch.Tensor, good: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, P) flux, (B, P) valid-pixel indicator (0/1), (B,) redshift -> (B, S) latents."""
        x = torch.stack([flux * good, good], dim=1)
        x = self.convs(x)
        values, keys = torch.split(x, self.n_feature, dim=1)
        features = torch.sum(values * torch.softmax(keys, dim=-1), dim=-1)
        return self.mlp(torch.cat([features, z[:, None].to(features.dtype)], dim=-1))
