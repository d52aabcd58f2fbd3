"""The outlier tests: tail probabilities, the learned model error, p-values and the reasons."""

import numpy as np
import pytest
from scipy.stats import chi2 as chi2_dist

from specsift.catalog.evidence import (Evidence, ModelErrorFit, OutlierCalibration, chi2_log10_sf,
                                       segments_for)

WAVE = np.linspace(3600.0, 9800.0, 3100)


@pytest.mark.parametrize("dof", [10, 100, 3000])
def test_chi2_tail_matches_scipy_in_log10(dof):
    x = chi2_dist.isf([0.5, 1e-3, 1e-8], dof)
    exact = chi2_dist.logsf(x, dof) / np.log(10)
    assert np.allclose(chi2_log10_sf(x, np.full(3, dof)), exact, rtol=0.08, atol=0.05)


def test_model_error_fit_recovers_a_fractional_error():
    rng = np.random.default_rng(0)
    n, f_true = 400, 0.05
    z = rng.uniform(0.0, 0.3, n)
    model = np.full((n, len(WAVE)), 2.0)
    sigma = 0.05
    flux = model * (1 + f_true * rng.normal(size=model.shape)) + rng.normal(0, sigma, model.shape)
    weight = np.full(model.shape, 1 / sigma**2)
    fit = ModelErrorFit(WAVE, (WAVE[0] / 1.3, WAVE[-1]), segments_for(WAVE, "desi"),
                        np.ones(len(WAVE), bool), bin_width=20.0)
    fit.update(flux, weight, model, z, np.ones(n, bool))
    cal = fit.calibration()
    covered = cal.model_error[(cal.error_edges[:-1] > 3700) & (cal.error_edges[1:] < 7500)]
    assert np.median(covered) == pytest.approx(f_true, rel=0.1)


def _calibration(reference):
    return OutlierCalibration(np.array([0.0, 1e5]), np.array([0.0]), segments_for(WAVE, "desi"),
                              np.zeros((10, 3)), np.sort(reference))


def test_pvalues_are_valid_in_a_heavy_tail_despite_anomalies_in_the_reference():
    rng = np.random.default_rng(1)
    null = 0.5 * rng.uniform(size=5000) ** -0.8             # heavy (Pareto) tail of normal scores
    reference = np.concatenate([null, rng.uniform(50, 500, 50)])   # 1% anomalies on top
    cal = _calibration(reference)
    fresh = 0.5 * rng.uniform(size=200000) ** -0.8
    p = cal.pvalue(fresh)
    for level in (0.1, 0.01, 1e-3, 1e-4):      # valid: at most the level
        assert np.mean(p <= level) <= 1.15 * level
    assert np.mean(p <= 0.01) >= 0.3 * 0.01    # the anomalies make it conservative, not useless
    clean = _calibration(null).pvalue(fresh)   # without them the tail is about exact
    for level in (0.01, 1e-3):
        assert 0.5 * level <= np.mean(clean <= level) <= 1.5 * level
    # an anomaly far above every normal object gets a p-value below what 5000 references allow
    assert cal.pvalue(np.array([1e6]))[0] < 1e-5
    assert np.isnan(cal.pvalue(np.array([np.nan]))[0])


def test_a_line_missing_from_the_spectrum_is_named_in_the_reason():
    rng = np.random.default_rng(2)
    z = np.array([0.1, 0.1])
    rest = WAVE / 1.1
    model = np.ones((2, len(WAVE))) + 3 * np.exp(-0.5 * ((rest - 6564.6) / 3) ** 2)
    sigma = 0.05
    flux = model + rng.normal(0, sigma, model.shape)
    flux[1] -= 3 * np.exp(-0.5 * ((rest - 6564.6) / 3) ** 2)      # no H-alpha in object 1
    weight = np.full(model.shape, 1 / sigma**2)
    cal = OutlierCalibration(np.array([0.0, 1e5]), np.array([0.0]), segments_for(WAVE, "desi"),
                             np.zeros((10, 3)), np.zeros(0))
    evidence = Evidence(cal, WAVE, np.ones(len(WAVE), bool), (WAVE[0] / 1.6, WAVE[-1]))
    tests = evidence.log10_tests(flux, weight, model, z, np.ones((2, 6)))
    score, best = evidence.score(tests)
    assert score[0] < 3 and score[1] > 20
    assert "H-alpha" in evidence.labels[best[1]]


def test_a_test_with_a_heavy_null_is_tempered_and_a_nominal_one_is_not():
    from specsift.catalog.evidence import test_scales

    rng = np.random.default_rng(3)
    nominal = np.log10(rng.uniform(size=(20000, 1)))             # log10 of uniform p-values
    heavy = 5 * np.log10(rng.uniform(size=(20000, 1)))           # five times too significant
    scale = test_scales(np.concatenate([nominal, heavy], axis=1))
    assert scale[0] == pytest.approx(1.0, abs=0.1) and scale[1] == pytest.approx(5.0, rel=0.1)


def test_a_kind_of_galaxy_the_model_fits_poorly_is_compared_with_its_own_kind():
    """Local tempering: a chi-square test that is heavy among an object's nearest training
    galaxies is tempered for that object only; the latent test keeps its global scale."""
    rng = np.random.default_rng(4)
    cal = OutlierCalibration(np.array([0.0, 1e5]), np.array([0.0]), segments_for(WAVE, "desi"),
                             np.zeros((10, 3)), np.zeros(0))
    evidence = Evidence(cal, WAVE, np.ones(len(WAVE), bool), (WAVE[0] / 1.6, WAVE[-1]))
    n, t = 2000, len(evidence.labels)
    base = rng.normal(size=(n, 6))
    kind_a = base[:, 0] > 1.0                                   # a corner of latent space
    significance = -np.log10(rng.uniform(size=(n, t)))
    significance[kind_a] *= 10                                  # ten times too significant there
    snr = rng.normal(size=n)
    cal.test_scale = np.ones(t)
    cal.snr_standard = np.array([0.0, 1.0])
    cal.neighbour_features = evidence.features(base, snr)
    cal.neighbour_significance = significance
    model = np.ones((2, len(WAVE)))
    weight = np.ones((2, len(WAVE)))                            # log S/N 0 for both
    probe = np.zeros((2, 6))
    probe[0, 0], probe[1, 0] = 2.0, -1.0                        # one of kind A, one not
    scale = evidence.local_scale(probe, weight, model)
    chi2_tests = evidence.chi2_test
    assert np.median(scale[0, chi2_tests]) == pytest.approx(10, rel=0.3)
    assert np.median(scale[1, chi2_tests]) == pytest.approx(1, abs=0.2)
    assert np.all(scale[:, ~chi2_tests] == 1)
    # without neighbours in the calibration (one written before them): the global scale
    cal.neighbour_features = cal.neighbour_significance = None
    assert np.all(evidence.local_scale(probe, weight, model) == 1)
