"""Fixed survey wavelength grids, and placing a file's pixels on them by offset (no resampling).

Survey pipelines write every spectrum on one global grid (DESI: linear 0.8 A; SDSS/BOSS and
LAMOST: 1e-4 dex in log10 lambda) and only the start and length differ between files. Placing a
file by its integer pixel offset keeps the flux values exactly as written, which resampling would
not (it correlates the noise and smears masks). A file whose pixels do not sit on the grid is
refused, naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import SpecsiftInputError

__all__ = ["Grid", "DESI_GRID", "SDSS_GRID", "LAMOST_GRID", "bad_pixels"]

logger = logging.getLogger("specsift.io")


@dataclass(frozen=True)
class Grid:
    """A global wavelength grid ``x_k = start + step * k`` for ``k < size``.

    Arguments:
        start: first pixel, in Angstrom (linear) or log10 Angstrom (``log=True``).
        step: pixel step in the same unit.
        size: number of pixels.
        log: whether ``x`` is log10 of the wavelength.
        name: the survey, for error messages.
    """

    start: float
    step: float
    size: int
    log: bool
    name: str

    @property
    def wave(self) -> np.ndarray:
        """(size,) wavelength in Angstrom."""
        x = self.start + self.step * np.arange(self.size)
        return 10.0 ** x if self.log else x

    def offset(self, wave, path, what: str = "wavelength", tol: float = 0.01) -> int:
        """Index of ``wave[0]`` on this grid; every pixel must be on the grid within ``tol`` px.

        Pixels may fall outside ``[0, size)``: :meth:`place` crops them.
        """
        wave = np.asarray(wave, dtype=np.float64)
        if wave.ndim != 1 or wave.size == 0 or not np.all(np.isfinite(wave)) or np.any(wave <= 0):
            raise SpecsiftInputError(f"{what} is not a 1-d array of positive finite values", path)
        x = np.log10(wave) if self.log else wave
        k = (x - self.start) / self.step
        first = int(np.rint(k[0]))
        expected = first + np.arange(wave.size)
        worst = float(np.max(np.abs(k - expected)))
        if worst > tol:
            unit = "dex" if self.log else "A"
            raise SpecsiftInputError(
                f"{what} is not on the {self.name} grid ({self.start:g} + {self.step:g} {unit} "
                f"steps): off by up to {worst:.3f} pixels; resample it onto that grid first", path)
        return first

    def place(self, offset: int, n: int, path=None) -> tuple[slice, slice]:
        """(grid slice, file slice) for ``n`` file pixels starting at grid pixel ``offset``.

        Pixels beyond the grid are cropped, with a warning naming ``path``.
        """
        lo, hi = max(offset, 0), min(offset + n, self.size)
        if hi - lo < n:
            logger.warning("%s: %d pixels fall outside the %s grid (%.0f-%.0f A) and are not read",
                           path, n - max(hi - lo, 0), self.name, self.wave[0], self.wave[-1])
        if hi <= lo:
            return slice(0, 0), slice(0, 0)
        return slice(lo, hi), slice(lo - offset, hi - offset)

    def stack(self, pieces, paths=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``(offset, flux, ivar, bad)`` (1-d each, from ``paths``) as (N, size) arrays
        ``flux, ivar, mask``; grid pixels a spectrum does not cover get flux 0, ivar 0, masked."""
        n = len(pieces)
        flux = np.zeros((n, self.size), np.float32)
        ivar = np.zeros((n, self.size), np.float32)
        mask = np.ones((n, self.size), bool)
        for i, (offset, f, iv, bad) in enumerate(pieces):
            dst, src = self.place(offset, f.size, paths[i] if paths else None)
            flux[i, dst], ivar[i, dst], mask[i, dst] = f[src], iv[src], bad[src]
        return flux, ivar, mask


# DESI coadds: b, r and z arms on one linear grid, 3600-9824 A in 0.8 A steps.
DESI_GRID = Grid(start=3600.0, step=0.8, size=7781, log=False, name="DESI")
# SDSS and BOSS: log10 lambda in 1e-4 steps; 3.5500-4.0200 covers both (3548-10471 A).
SDSS_GRID = Grid(start=3.55, step=1e-4, size=4701, log=True, name="SDSS/BOSS")
# LAMOST low resolution: the same 1e-4 dex step; 3.5650-3.9599 covers 3673-9120 A (DR1 files
# run 3.5682-3.9585).
LAMOST_GRID = Grid(start=3.565, step=1e-4, size=3950, log=True, name="LAMOST")



def bad_pixels(flux: np.ndarray, ivar: np.ndarray, mask=None, bad_bits: int = ~0) -> np.ndarray:
    """The readers' bad-pixel rule: ``mask & bad_bits`` set, ``ivar <= 0`` or non-finite values."""
    bad = ~(ivar > 0) | ~np.isfinite(flux) | ~np.isfinite(ivar)
    if mask is not None:
        if mask.dtype.kind == "f":  # LAMOST stores its masks as floats
            mask = np.nan_to_num(mask, nan=1).astype(np.int64)
        bad |= (mask & np.array(bad_bits).astype(mask.dtype)) != 0  # any int width on disk
    return bad
