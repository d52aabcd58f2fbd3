"""Check and clean a batch before it reaches the network: bad objects are flagged, never NaN.

Training and encoding share these rules, so an object the trainer skipped is exactly an object
whose FLAG is non-zero in the encoded table.
"""

from __future__ import annotations

import logging

import torch

__all__ = ["FLAG_NO_VALID_PIXELS", "FLAG_Z_OUT_OF_RANGE", "FLAG_NONFINITE", "FLAG_NAMES",
           "clean_batch", "describe_flags"]

logger = logging.getLogger("specsift.models")

FLAG_NO_VALID_PIXELS = 1
FLAG_Z_OUT_OF_RANGE = 2
FLAG_NONFINITE = 4
FLAG_NAMES = {FLAG_NO_VALID_PIXELS: "no valid pixels",
              FLAG_Z_OUT_OF_RANGE: "redshift outside the model range",
              FLAG_NONFINITE: "non-finite flux, ivar or redshift"}


def clean_batch(flux: torch.Tensor, ivar: torch.Tensor, z: torch.Tensor, z_min: float,
                z_max: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(flux, ivar, z, flag)`` safe to feed to the model.

    Non-finite flux or ivar on a pixel zeroes that pixel's weight (flag 4); a non-finite redshift
    is replaced by ``z_min`` (flag 4); a redshift outside ``[z_min, z_max]`` is kept (the uncovered
    pixels get zero weight) but flagged 2; an object with no pixel of positive weight is flagged 1.
    Flagged objects are excluded from training losses; their latents are still computed.
    """
    bad_pixel = ~torch.isfinite(flux) | ~torch.isfinite(ivar)
    z_bad = ~torch.isfinite(z)
    flag = torch.zeros(z.shape, dtype=torch.int32, device=z.device)
    flag |= (bad_pixel & (ivar != 0)).any(-1).int() * FLAG_NONFINITE
    flag |= z_bad.int() * FLAG_NONFINITE
    ivar = torch.where(bad_pixel | ~(ivar > 0), torch.zeros_like(ivar), ivar)
    flux = torch.where(torch.isfinite(flux), flux, torch.zeros_like(flux))
    z = torch.where(z_bad, torch.full_like(z, z_min), z)
    flag |= ((z < z_min) | (z > z_max)).int() * FLAG_Z_OUT_OF_RANGE
    flag |= (ivar > 0).sum(-1).eq(0).int() * FLAG_NO_VALID_PIXELS
    return flux, ivar, z, flag


def describe_flags(flag: int) -> str:
    """Words for a flag value, e.g. ``'no valid pixels; redshift outside the model range'``."""
    return "; ".join(name for bit, name in FLAG_NAMES.items() if flag & bit) or "fine"
