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

__all__ = ["SpectrumEncoder", "mlp"]


def mlp(sizes: list[int], activation=nn.LeakyReLU) -> nn.Sequential:
    """Linear layers through ``sizes`` with an activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class SpectrumEncoder(nn.Module):
    """Map an observed spectrum (flux, which pixels are valid, redshift) to ``n_latent`` numbers.

    Arguments:
        n_latent: size S of the latent vector.
        channels: output channels of the convolution blocks (the last is split in half: values
            and attention keys).
        kernels: kernel size of each block; blocks but the last are followed by max-pooling with
            the same size (stride = size), as in SPENDER.
        hidden: hidden layer sizes of the MLP from the pooled features (+ redshift) to latents.
        pool_first: max-pool right after each convolution, before instance norm and PReLU.
            Both are monotonic per channel, so the pooled maxima are nearly the same, but the
            element-wise work at full resolution drops (the CPU bottleneck); False
            gives SPENDER's order (conv, norm, PReLU, pool).

    The input has two channels: the flux (0 on masked pixels) and the valid-pixel indicator, so the
    network can tell "no flux" from "no data".
    """

    def __init__(self, n_latent: int, channels: list[int], kernels: list[int], hidden: list[int],
                 pool_first: bool = False):
        super().__init__()
        if len(channels) != len(kernels) or channels[-1] % 2:
            raise ValueError("need one kernel per block and an even number of last channels")
        blocks = []
        for i, (c_out, k) in enumerate(zip(channels, kernels)):
            c_in = 2 if i == 0 else channels[i - 1]
            layers = [nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.InstanceNorm1d(c_out),
                      nn.PReLU(c_out)]
            if i < len(channels) - 1:
                layers.insert(1 if pool_first else 3, nn.MaxPool1d(k, padding=k // 2))
            blocks.append(nn.Sequential(*layers))
        self.convs = nn.Sequential(*blocks)
        self.n_feature = channels[-1] // 2
        self.mlp = mlp([self.n_feature + 1, *hidden, n_latent])

    def forward(self, flux: torch.Tensor, good: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, P) flux, (B, P) valid-pixel indicator (0/1), (B,) redshift -> (B, S) latents."""
        x = torch.stack([flux * good, good], dim=1)
        x = self.convs(x)
        values, keys = torch.split(x, self.n_feature, dim=1)
        features = torch.sum(values * torch.softmax(keys, dim=-1), dim=-1)
        return self.mlp(torch.cat([features, z[:, None].to(features.dtype)], dim=-1))
