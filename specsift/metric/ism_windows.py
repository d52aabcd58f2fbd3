"""Find the wavelength windows hit by interstellar absorption (de Mijolla & Ness 2022, App. A).

Diffuse interstellar bands depend on the dust column towards a star, not on its chemistry, so a
metric learnt on spectra must not see them: two stars behind the same dust would look alike.
Recipe: model low-extinction stars with a PPCA (they carry no interstellar features), predict
the high-extinction stars with it, and average their residuals. Interstellar bands appear as
coherent absorption troughs in that mean residual; pixels below ``-n_sigma`` robust standard
deviations are grouped into windows, widened by ``pad`` pixels and merged when closer than
``merge`` pixels. The windows are then censored like bad pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import SpecsiftInputError
from .ppca import PPCA

__all__ = ["find_ism_windows", "ISMWindows", "apply_windows", "window_mask"]

logger = logging.getLogger("specsift.metric")


@dataclass
class ISMWindows:
    """Detected windows (Angstrom) with the mean residual spectrum they were found in."""

    windows: list[tuple[float, float]]
    centres: list[float]
    residual: np.ndarray
    threshold: float
    wave: np.ndarray
    n_low: int
    n_high: int

    def to_dict(self) -> dict:
        return {"windows": [list(w) for w in self.windows], "centres": self.centres,
                "threshold": self.threshold, "n_low_extinction": self.n_low,
                "n_high_extinction": self.n_high}


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop (exclusive) of each run of True values."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def find_ism_windows(flux: np.ndarray, ak: np.ndarray, wave: np.ndarray, ak_low: float = 0.05,
                     high_quantile: float = 0.9, n_components: int = 10, n_sigma: float = 5.0,
                     pad: int = 3, merge: int = 5, seed: int = 0,
                     max_low: int = 5000) -> ISMWindows:
    """Windows of interstellar absorption from the residuals of high-extinction stars.

    Arguments:
        flux: (N, P) normalised spectra, NaN where censored.
        ak: (N,) extinction A_K of each star.
        wave: (P,) wavelengths of the columns.
        ak_low: stars below are the clean training sample (at most ``max_low`` of them).
        high_quantile: stars above this A_K quantile (and above ``2 ak_low``) are probed.
    """
    ak = np.asarray(ak, np.float64)
    low = np.flatnonzero(ak < ak_low)
    high = np.flatnonzero((ak >= np.quantile(ak, high_quantile)) & (ak > 2 * ak_low))
    if len(low) <= n_components + 2 or len(high) < 5:
        raise SpecsiftInputError(f"need more than {n_components + 2} stars with A_K < {ak_low} "
                                 f"and 5 with high A_K (have {len(low)} and {len(high)})")
    if len(low) > max_low:
        low = np.sort(np.random.default_rng(seed).choice(low, max_low, replace=False))
    model = PPCA(n_components=n_components, seed=seed, tol=1e-4).fit(flux[low])
    residual_stars = flux[high] - model.inverse_transform(model.transform(flux[high]))
    counts = np.isfinite(residual_stars).sum(0)
    residual = np.where(counts > 0, np.nansum(residual_stars, 0) / np.maximum(counts, 1), np.nan)
    valid = np.isfinite(residual)
    centre = np.median(residual[valid])
    sigma = 1.4826 * np.median(np.abs(residual[valid] - centre))
    threshold = centre - n_sigma * sigma
    flags = valid & (residual < threshold)
    for _ in range(pad):  # widen by pad pixels on each side
        flags[1:] |= flags[:-1].copy()
        flags[:-1] |= flags[1:].copy()
    runs = _runs(flags)
    merged: list[list[int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] < merge:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    windows, centres = [], []
    for start, stop in merged:
        windows.append((float(wave[start]), float(wave[stop - 1])))
        seg = np.where(valid[start:stop], residual[start:stop], np.inf)
        centres.append(float(wave[start + int(np.argmin(seg))]))
    logger.info("interstellar windows from %d high-A_K stars: %s", len(high),
                ", ".join(f"{c:.0f}" for c in centres) or "none")
    return ISMWindows(windows, centres, residual, float(threshold), np.asarray(wave), len(low),
                      len(high))


def window_mask(wave: np.ndarray, windows) -> np.ndarray:
    """(P,) bool: pixels inside any (lo, hi) window, in Angstrom."""
    inside = np.zeros(len(wave), bool)
    for lo, hi in windows:
        inside |= (wave >= lo) & (wave <= hi)
    return inside


def apply_windows(flux: np.ndarray, wave: np.ndarray, windows) -> np.ndarray:
    """Censor (set to NaN, in place) the columns of ``flux`` inside any window."""
    flux[:, window_mask(wave, windows)] = np.nan
    return flux
