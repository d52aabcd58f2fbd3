"""Hand-built spectra for preprocessing tests: flat continuum with known level and noise."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from specsift import Spectra

WAVE = np.arange(3600.0, 9824.01, 0.8)


def flat_spectra(levels, z, sigma: float = 0.1, seed: int = 0, **meta) -> Spectra:
    """Objects with flux = level (+ noise), ivar = 1/sigma^2, on the DESI grid."""
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels, dtype=float)
    n = len(levels)
    flux = (levels[:, None] + sigma * rng.standard_normal((n, WAVE.size))).astype(np.float32)
    ivar = np.full((n, WAVE.size), 1 / sigma**2, dtype=np.float32)
    table = Table({"FILENAME": np.full(n, "hand.fits"), "ROW": np.arange(n),
                   "IS_TARGET": np.ones(n, bool), **meta})
    return Spectra(WAVE, flux, ivar, np.zeros((n, WAVE.size), bool), np.asarray(z, float),
                   np.arange(100, 100 + n), table, "desi")
