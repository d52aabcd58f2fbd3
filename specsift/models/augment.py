"""Redshift augmentation: the same object as it would look at another redshift, with extra noise.

The consistency loss and the invariance ratio compare an object with such a copy; if the latents
describe the rest-frame spectrum, both encode to (nearly) the same point.
"""

from __future__ import annotations

import torch

from .resample import interp

__all__ = ["redshift_copy"]


def redshift_copy(flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor, wave: torch.Tensor,
                  z_min: float, z_max: float, generator: torch.Generator | None = None,
                  max_shift: float = 0.2, noise: float = 0.0):
    """Shift each spectrum to a random new redshift (and optionally add noise).

    The copy at ``z'`` shows at observed wavelength ``lambda`` what the original showed at
    ``lambda (1+z)/(1+z')``; flux and weights are linearly interpolated, and a pixel of the copy is
    valid only if both original pixels around it are valid and it falls inside the grid.

    Arguments:
        flux, ivar: (B, P) normalised spectra and inverse variances (0 = masked).
        z: (B,) redshifts. wave: (P,) observed grid.
        z_min, z_max: the new redshift stays inside the model range.
        generator: source of randomness (seeded by the caller for reproducible training).
        max_shift: ``|z' - z|`` is drawn uniformly up to this value, clipped to the range.
        noise: extra Gaussian noise with standard deviation ``u * noise`` times the pixel's own
            sigma, ``u`` uniform in [0, 1) per object; the copy's ivar is reduced to match.

    Returns:
        ``(flux', ivar', z')``.
    """
    device = flux.device
    u = torch.rand(z.shape, generator=generator, device=device, dtype=torch.float64)
    lo = torch.clamp(z.double() - max_shift, min=z_min)
    hi = torch.clamp(z.double() + max_shift, max=z_max)
    z_new = lo + u * (hi - lo)
    query = wave.double()[None, :] * ((1 + z.double()) / (1 + z_new))[:, None]
    flux_new, inside = interp(query, wave.double(), flux)
    good = (ivar > 0).to(flux.dtype)
    good_new, _ = interp(query, wave.double(), good)
    ivar_new, _ = interp(query, wave.double(), ivar)
    valid = inside & (good_new > 1 - 1e-4)
    ivar_new = torch.where(valid, ivar_new, torch.zeros_like(ivar_new))
    flux_new = torch.where(valid, flux_new, torch.zeros_like(flux_new))
    if noise > 0:
        scale = noise * torch.rand(z.shape, generator=generator, device=device, dtype=flux.dtype)
        sigma = torch.where(valid, ivar_new.clamp_min(1e-30).rsqrt(), torch.zeros_like(ivar_new))
        eps = torch.randn(flux.shape, generator=generator, device=device, dtype=flux.dtype)
        flux_new = flux_new + eps * sigma * scale[:, None]
        ivar_new = ivar_new / (1 + scale[:, None].square())
    return flux_new, ivar_new, z_new.to(z.dtype)
