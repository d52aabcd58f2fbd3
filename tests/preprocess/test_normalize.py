"""Normalisation: median good flux in rest 5300-5850 A, ivar scaled, clear reasons otherwise."""

from __future__ import annotations

import numpy as np

from specsift.preprocess.config import NormalizeConfig
from specsift.preprocess.normalize import normalize, window_median

from .helpers import WAVE


def test_norm_is_median_of_good_pixels_in_the_redshifted_window():
    z = np.array([0.0, 0.3])
    rng = np.random.default_rng(1)
    flux = rng.uniform(0.5, 5.0, (2, WAVE.size))
    good = rng.uniform(size=flux.shape) > 0.2
    norm, reason, _ = window_median(WAVE, flux, good, z, NormalizeConfig())
    for i in range(2):
        inside = (WAVE >= 5300 * (1 + z[i])) & (WAVE <= 5850 * (1 + z[i])) & good[i]
        assert norm[i] == np.median(flux[i, inside])
    assert (reason == "").all()


def test_normalised_flux_has_unit_median_and_unchanged_snr():
    rng = np.random.default_rng(2)
    flux = 3.0 + rng.standard_normal((1, WAVE.size))
    ivar = np.full_like(flux, 4.0)
    good = np.ones_like(flux, bool)
    good[0, :5] = False
    norm, _, _ = window_median(WAVE, flux, good, np.array([0.1]), NormalizeConfig())
    out_flux, out_ivar = normalize(flux, ivar, good, norm)
    window = (WAVE >= 5300 * 1.1) & (WAVE <= 5850 * 1.1)
    assert abs(np.median(out_flux[0, window]) - 1) < 1e-6
    np.testing.assert_allclose(out_flux[good] * np.sqrt(out_ivar[good]),
                               flux[good] * np.sqrt(ivar[good]), rtol=1e-5)
    assert (out_flux[~good] == 0).all() and (out_ivar[~good] == 0).all()
    assert out_flux.dtype == np.float32 and out_ivar.dtype == np.float32


def test_unnormalisable_objects_get_their_reason():
    flux = np.ones((4, WAVE.size))
    flux[2] = -1.0
    good = np.ones_like(flux, bool)
    good[1, (WAVE > 5300 * 1.2) & (WAVE < 5850 * 1.2)] = False
    z = np.array([np.nan, 0.2, 0.1, 1.5])  # z = 1.5 puts the window beyond 9824 A
    norm, reason, detail = window_median(WAVE, flux, good, z, NormalizeConfig())
    assert reason[0] == "normalisation: no redshift"
    assert reason[1] == "normalisation: fewer than 10 good pixels in window"
    assert detail[1].startswith("0 good pixels")
    assert reason[2] == "normalisation: median flux in window <= 0" and norm[2] == -1
    assert reason[3] == "normalisation: fewer than 10 good pixels in window"


def test_method_none_keeps_the_scale():
    norm, reason, _ = window_median(WAVE, np.ones((2, WAVE.size)), np.ones((2, WAVE.size), bool),
                                    np.full(2, np.nan), NormalizeConfig(method="none"))
    assert (norm == 1).all() and (reason == "").all()
