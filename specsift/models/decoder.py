"""Spectrum decoder: an MLP from the latents to a rest-frame spectrum on a fine, fixed grid.

The decoder knows nothing about redshift: it only predicts the rest-frame spectrum, and
:func:`~specsift.models.resample.redshift_to_observed` places it on the detector. This is what
makes the rest-frame model a product users can inspect, not just the reconstruction.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoder import mlp

__all__ = ["SpectrumDecoder"]


class SpectrumDecoder(nn.Module):
    """Latents (B, S) -> rest-frame model (B, R).

    Arguments:
        n_latent: size S of the latent vector.
        n_rest: number R of rest-frame pixels.
        hidden: hidden layer sizes (SPENDER: 64, 256, 1024).
        lsf: optional 1-D kernel the rest-frame model is convolved with (flux preserving).
    """

    def __init__(self, n_latent: int, n_rest: int, hidden: list[int], lsf: torch.Tensor | None = None):
        super().__init__()
        self.mlp = mlp([n_latent, *hidden, n_rest])
        self.register_buffer("lsf", None if lsf is None else lsf.float().reshape(1, 1, -1))

    @torch.no_grad()
    def start_from(self, spectrum, spread: float = 0.1) -> None:
        """Start at ``spectrum`` (R,): it becomes the output bias and the output weights shrink
        by ``spread``, so every latent first decodes to about that spectrum."""
        last = self.mlp[-1]
        last.bias.copy_(torch.as_tensor(spectrum, dtype=last.bias.dtype))
        last.weight.mul_(spread)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        model = self.mlp(latents)
        if self.lsf is not None:
            model = nn.functional.conv1d(model[:, None], self.lsf,
                                         padding=self.lsf.shape[-1] // 2)[:, 0]
        return model
