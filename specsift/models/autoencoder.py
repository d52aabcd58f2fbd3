"""The spectrum autoencoder: encoder + rest-frame decoder + redshift/resampling step.

The public API (``encode``, ``decode``, ``rest_model``, ``rest_wave``) is what every later step
(scoring, flows, plots) uses; the training losses live in :mod:`specsift.models.losses`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .decoder import SpectrumDecoder
from .encoder import SpectrumEncoder
from .instrument import Instrument
from .resample import redshift_to_observed

__all__ = ["SpectrumAutoencoder"]


class SpectrumAutoencoder(nn.Module):
    """SPENDER-style autoencoder whose latents describe the rest-frame spectrum.

    Arguments:
        instrument: observed grid (and optional fixed mask / LSF) of the survey.
        n_latent: size S of the latent vector (default 6).
        z_min, z_max: redshift range the rest-frame grid covers.
        channels, kernels, encoder_hidden, decoder_hidden, rest_step: see
            :mod:`specsift.models.configs`.

    Example:
        >>> inst = Instrument(np.linspace(4000.0, 5000.0, 200))
        >>> ae = SpectrumAutoencoder(inst, 4, 0.0, 0.2, [4, 8, 8], [3, 3, 3], [8], [16], 5.0)
        >>> flux, ivar, z = torch.ones(2, 200), torch.ones(2, 200), torch.tensor([0.0, 0.1])
        >>> ae.decode(ae.encode(flux, ivar, z), z).shape
        torch.Size([2, 200])
    """

    def __init__(self, instrument: Instrument, n_latent: int, z_min: float, z_max: float,
                 channels: list[int], kernels: list[int], encoder_hidden: list[int],
                 decoder_hidden: list[int], rest_step: float):
        super().__init__()
        self.z_min, self.z_max = float(z_min), float(z_max)
        wave_rest = instrument.rest_grid(z_min, z_max, rest_step)
        self.register_buffer("wave_obs", torch.as_tensor(instrument.wave, dtype=torch.float64))
        self.register_buffer("wave_rest", torch.as_tensor(wave_rest, dtype=torch.float64))
        fixed = np.zeros(len(instrument.wave), bool) if instrument.mask is None else instrument.mask
        self.register_buffer("fixed_mask", torch.as_tensor(fixed))
        lsf = None if instrument.lsf is None else torch.as_tensor(instrument.lsf)
        self.encoder = SpectrumEncoder(n_latent, channels, kernels, encoder_hidden)
        self.decoder = SpectrumDecoder(n_latent, len(wave_rest), decoder_hidden, lsf)
        self.n_latent = n_latent

    @property
    def rest_wave(self) -> torch.Tensor:
        """(R,) rest-frame wavelength grid of :meth:`rest_model`, Angstrom."""
        return self.wave_rest

    def weights(self, ivar: torch.Tensor) -> torch.Tensor:
        """Inverse variance with the instrument's fixed mask and invalid values set to 0."""
        ivar = torch.where(torch.isfinite(ivar) & (ivar > 0), ivar, torch.zeros_like(ivar))
        return ivar.masked_fill(self.fixed_mask, 0.0)

    def encode(self, flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, P) normalised flux and inverse variance, (B,) redshift -> (B, S) latents."""
        good = (self.weights(ivar) > 0).to(flux.dtype)
        flux = torch.where(good > 0, flux, torch.zeros_like(flux))
        return self.encoder(flux, good, z)

    def rest_model(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, S) latents -> (B, R) rest-frame model spectra on :attr:`rest_wave`."""
        return self.decoder(latents)

    def decode(self, latents: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, S) latents, (B,) redshift -> (B, P) model on the observed grid (0 where uncovered)."""
        return self.observe(self.rest_model(latents), z)[0]

    def observe(self, rest: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Redshift (B, R) rest-frame models onto the observed grid: ``(model, covered)``."""
        model, covered = redshift_to_observed(self.wave_rest, rest.float(), self.wave_obs, z)
        return model, covered

    def forward(self, flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor):
        """Encode and reconstruct: ``(latents, rest_model, observed_model, covered)``."""
        latents = self.encode(flux, ivar, z)
        rest = self.rest_model(latents)
        model, covered = self.observe(rest, z)
        return latents, rest, model, covered
