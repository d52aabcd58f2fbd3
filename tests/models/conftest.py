"""A synthetic in-memory store with the ``SpectraStore`` interface, for fast model tests.

Spectra are a sloped continuum plus Gaussian lines at fixed rest wavelengths, redshifted onto a
coarse observed grid with known noise, so tests can check recovered values against the truth.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

LINES = np.array([4863.0, 5008.0, 6565.0, 6585.0, 3728.0])


class SyntheticStore:
    """``n`` objects on a ``pixels``-pixel grid; 70/15/15 % train/validation/test."""

    def __init__(self, n: int = 96, pixels: int = 300, z_max: float = 0.3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.survey = "synthetic"
        self.wave = np.linspace(4500.0, 9000.0, pixels)
        z = rng.uniform(0.0, z_max, n)
        slope = rng.uniform(-0.5, 0.5, n)
        amp = rng.uniform(0.0, 3.0, (n, len(LINES)))
        rest = self.wave[None, :] / (1 + z[:, None])
        truth = 1 + slope[:, None] * (rest - 5500) / 3000
        for k, line in enumerate(LINES):
            truth += amp[:, k:k + 1] * np.exp(-0.5 * ((rest - line) / 15.0) ** 2)
        sigma = 0.1
        self.truth = truth.astype(np.float32)
        self.flux = (truth + rng.normal(0, sigma, truth.shape)).astype(np.float32)
        self.ivar = np.full(truth.shape, 1 / sigma**2, np.float32)
        split = np.array(["train"] * n, dtype="<U10")
        split[int(0.7 * n):int(0.85 * n)] = "validation"
        split[int(0.85 * n):] = "test"
        self.meta = Table({"ID": np.arange(n) + 1000, "Z": z, "SPLIT": split,
                           "NORM": np.ones(n), "SNR": np.full(n, 10.0)})

    def __len__(self) -> int:
        return len(self.meta)

    def batches(self, batch_size=256, split=None, rows=None, shuffle=False, seed=0):
        if rows is None:
            rows = np.arange(len(self)) if split is None else \
                np.flatnonzero(np.asarray(self.meta["SPLIT"]) == split)
        rows = np.asarray(rows)
        if shuffle:
            rows = np.random.default_rng(seed).permutation(rows)
        for start in range(0, len(rows), batch_size):
            sel = rows[start:start + batch_size]
            yield {"flux": self.flux[sel].copy(), "ivar": self.ivar[sel].copy(),
                   "z": np.asarray(self.meta["Z"][sel], np.float32), "row": sel.astype(np.int64)}


@pytest.fixture(scope="session")
def synthetic_store():
    return SyntheticStore()


@pytest.fixture(scope="session")
def make_store():
    """The :class:`SyntheticStore` class, for tests that need their own (e.g. corrupted) store."""
    return SyntheticStore
