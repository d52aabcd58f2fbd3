"""Scale every spectrum to a common level: the median flux in a rest-frame window.

Dividing by the median good flux over rest-frame 5300-5850 A (a stretch of galaxy continuum free
of strong lines, as in Liang et al. 2023) removes distance and fibre-aperture differences while
keeping spectral shape. The inverse variance is scaled by ``norm**2`` so that ``flux * sqrt(ivar)``
(the S/N) is unchanged. Objects with too few good pixels in the window, or a non-positive median,
cannot be normalised and are rejected with that reason rather than given an arbitrary scale.
"""

from __future__ import annotations

import numpy as np

from .config import NormalizeConfig

__all__ = ["window_median", "normalize"]


def window_median(wave: np.ndarray, flux: np.ndarray, good: np.ndarray, z: np.ndarray,
                  config: NormalizeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median good flux of each object in the rest-frame window.

    Returns:
        ``(norm, reason, detail)``: (N,) norm (NaN where it cannot be computed) and per object
        ``''`` or why it cannot be normalised.
    """
    n = flux.shape[0]
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)
    if config.method == "none":
        return np.ones(n), reason, detail
    lo, hi = config.window
    z = np.asarray(z, dtype=np.float64)
    no_z = ~np.isfinite(z) | (z <= -1)
    zz = np.where(no_z, 0.0, z)[:, None]
    # restrict the work to grid columns any object's window can reach
    cols = slice(np.searchsorted(wave, lo * (1 + zz.min())),
                 np.searchsorted(wave, hi * (1 + zz.max()), side="right"))
    w = wave[cols][None, :]
    inside = (w >= lo * (1 + zz)) & (w <= hi * (1 + zz)) & good[:, cols] & ~no_z[:, None]
    n_pixels = inside.sum(axis=1)
    values = np.where(inside, flux[:, cols], np.nan)
    enough = n_pixels >= max(config.min_pixels, 1)
    norm = np.full(n, np.nan)
    if enough.any():
        norm[enough] = np.nanmedian(values[enough], axis=1)
    window = f"rest {lo:g}-{hi:g} A"
    reason[no_z] = "normalisation: no redshift"
    detail[no_z] = [f"z = {v}" for v in z[no_z]]
    few = ~enough & ~no_z
    reason[few] = f"normalisation: fewer than {config.min_pixels} good pixels in window"
    detail[few] = [f"{k} good pixels in {window} (observed {lo * (1 + v):.0f}-{hi * (1 + v):.0f} A)"
                   for k, v in zip(n_pixels[few], z[few])]
    nonpos = enough & ~(norm > 0)
    reason[nonpos] = "normalisation: median flux in window <= 0"
    detail[nonpos] = [f"median {v:.4g} over {k} pixels in {window}"
                      for v, k in zip(norm[nonpos], n_pixels[nonpos])]
    return norm, reason, detail


def normalize(flux: np.ndarray, ivar: np.ndarray, good: np.ndarray,
              norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``flux / norm`` and ``ivar * norm**2``, both exactly 0 on bad pixels (float32)."""
    norm = np.asarray(norm, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        out_flux = np.divide(flux, norm.astype(np.float32), dtype=np.float32)
        out_ivar = np.multiply(ivar, (norm**2).astype(np.float32), dtype=np.float32)
    out_flux[~good] = 0.0
    out_ivar[~good] = 0.0
    return out_flux, out_ivar
