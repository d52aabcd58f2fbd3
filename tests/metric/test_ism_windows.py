"""Appendix A: interstellar windows appear in the residuals of high-extinction stars."""

import numpy as np
import pytest

from specsift.errors import SpecsiftInputError
from specsift.metric.ism_windows import apply_windows, find_ism_windows, window_mask


def _spectra_with_band(seed=0, n=600, d=400):
    rng = np.random.default_rng(seed)
    wave = np.linspace(15100, 15300, d)
    basis = rng.normal(size=(3, d)) * 0.02
    flux = 1 + rng.normal(size=(n, 3)) @ basis + 0.003 * rng.normal(size=(n, d))
    ak = np.where(rng.random(n) < 0.7, rng.uniform(0, 0.04, n), rng.uniform(0.2, 0.6, n))
    band = np.exp(-0.5 * ((wave - 15272.4) / 1.5) ** 2)
    flux -= 0.05 * ak[:, None] * band
    flux[rng.random(flux.shape) < 0.03] = np.nan
    return flux.astype(np.float32), ak, wave


def test_finds_the_injected_band_and_nothing_else():
    flux, ak, wave = _spectra_with_band()
    found = find_ism_windows(flux, ak, wave, n_components=3)
    assert len(found.windows) == 1
    assert found.centres[0] == pytest.approx(15272.4, abs=1.0)
    lo, hi = found.windows[0]
    assert lo < 15272.4 < hi and hi - lo < 15


def test_apply_windows_censors_only_inside():
    flux, _, wave = _spectra_with_band()
    out = apply_windows(flux.copy(), wave, [(15200.0, 15210.0)])
    inside = window_mask(wave, [(15200.0, 15210.0)])
    assert np.isnan(out[:, inside]).all()
    np.testing.assert_array_equal(np.isnan(out[:, ~inside]), np.isnan(flux[:, ~inside]))


def test_too_few_high_extinction_stars_is_an_error():
    flux, ak, wave = _spectra_with_band()
    with pytest.raises(SpecsiftInputError, match="A_K"):
        find_ism_windows(flux, np.zeros_like(ak), wave)


def test_mock_dibs_are_found(mock_rsca):
    data, _ = mock_rsca
    _, field_ak = data.samples.column("AK_TARG")
    found = find_ism_windows(data.field, field_ak, data.wave, n_components=5)
    # the two strongest mock DIBs (15272 and 15653 A) stand out even in 250 stars
    assert any(abs(c - 15272) < 4 for c in found.centres)
    assert any(abs(c - 15653) < 4 for c in found.centres)
