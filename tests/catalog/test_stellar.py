"""The star-likeness test and its combination with the residual evidence."""

import numpy as np
import pytest

from specsift.catalog.starlike import StarLikeNull, combine


def test_a_galaxy_the_star_model_explains_better_than_any_normal_galaxy_gets_a_tiny_pvalue():
    rng = np.random.default_rng(0)
    normal = -50.0 + 10.0 * rng.standard_normal(3000)
    null = StarLikeNull(normal)
    log10_p = null.log10_pvalue(np.array([-50.0, -20.0, 40.0, np.nan]))
    assert -0.5 < log10_p[0] <= 0.0                    # a typical galaxy: nothing to see
    assert log10_p[1] < -2.0                           # beyond the bulk: the fitted tail
    assert log10_p[2] < log10_p[1] - 5.0               # far beyond: far smaller, still finite
    assert np.isfinite(log10_p[2]) and log10_p[3] == 0.0


def test_the_tail_pvalues_are_calibrated_on_fresh_normal_galaxies():
    rng = np.random.default_rng(1)
    null = StarLikeNull(rng.exponential(5.0, 4000))
    fresh = rng.exponential(5.0, 200000)
    p = 10.0 ** null.log10_pvalue(fresh)
    for level in (1e-2, 1e-3):
        assert np.mean(p < level) == pytest.approx(level, rel=0.35)


def test_too_few_reference_galaxies_leave_the_test_out():
    assert StarLikeNull.from_catalog(np.zeros(50), np.full(50, "validation"),
                                     np.zeros(50, bool)) is None
    assert StarLikeNull.from_catalog(np.zeros(500), None, np.zeros(500, bool)) is None
    split = np.where(np.arange(500) % 2 == 0, "validation", "train")
    assert len(StarLikeNull.from_catalog(np.arange(500.0), split,
                                         np.zeros(500, bool)).reference_) == 250


def test_bonferroni_over_the_two_tests_names_the_deciding_one():
    log10_p, star = combine(np.array([-6.0, -0.1, np.nan]), np.array([-2.0, -8.0, -3.0]))
    assert log10_p[:2] == pytest.approx([-6.0 + np.log10(2), -8.0 + np.log10(2)])
    assert star[:2].tolist() == [False, True]
    assert np.isnan(log10_p[2])


def test_the_catalogue_ranks_a_galaxy_the_star_model_explains_first_and_says_why():
    from astropy.table import Table

    from specsift.catalog.classify import StarGalaxyRule
    from specsift.catalog.scoring import assemble_catalog

    rng = np.random.default_rng(2)
    n = 1000
    chi2_star = 1.5 + 0.1 * rng.random(n)
    chi2_star[7] = 1.06                                    # a galaxy with a star in its fibre
    scores = {"STORE_ROW": np.arange(n), "CHI2_GALAXY": np.full(n, 1.05),
              "CHI2_STAR": chi2_star, "LOGP_GALAXY": np.zeros(n), "LOGP_STAR": np.zeros(n),
              "OUTLIER_SCORE": rng.random(n), "OUTLIER_PVALUE": rng.uniform(0.01, 1.0, n),
              "OUTLIER_REASON": np.full(n, "spectrum"), "NPIX_GALAXY": np.full(n, 1000),
              "NPIX_STAR": np.full(n, 1000), "FLAG_GALAXY": np.zeros(n, int),
              "FLAG_STAR": np.zeros(n, int)}
    meta = Table({"TARGETID": np.arange(n), "Z": np.full(n, 0.1),
                  "SPLIT": np.where(np.arange(n) % 3 == 0, "validation", "train")})
    table = assemble_catalog(scores, meta, StarGalaxyRule("chi2"))
    assert not table["IS_STAR"][7]
    assert table["RANK"][7] == 1 and table["OUTLIER_REASON"][7] == "star-like"
    assert table["OUTLIER_PVALUE"][7] < 1e-6
    np.testing.assert_allclose(table["OUTLIER_SCORE"], -np.log10(table["OUTLIER_PVALUE"]))
