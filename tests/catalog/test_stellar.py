"""The star-likeness and star blend tests, and their combination with the residual evidence."""

import numpy as np
import pytest

from specsift.catalog.stellar import ValidationNull, blend_improvement, combine


def test_a_galaxy_the_star_model_explains_better_than_any_normal_galaxy_gets_a_tiny_pvalue():
    rng = np.random.default_rng(0)
    normal = -50.0 + 10.0 * rng.standard_normal(3000)
    null = ValidationNull(normal)
    log10_p = null.log10_pvalue(np.array([-50.0, -20.0, 40.0, np.nan]))
    assert -0.5 < log10_p[0] <= 0.0                    # a typical galaxy: nothing to see
    assert log10_p[1] < -2.0                           # beyond the bulk: the fitted tail
    assert log10_p[2] < log10_p[1] - 5.0               # far beyond: far smaller, still finite
    assert np.isfinite(log10_p[2]) and log10_p[3] == 0.0


def test_the_tail_pvalues_are_calibrated_on_fresh_normal_galaxies():
    rng = np.random.default_rng(1)
    null = ValidationNull(rng.exponential(5.0, 4000))
    fresh = rng.exponential(5.0, 200000)
    p = 10.0 ** null.log10_pvalue(fresh)
    for level in (1e-2, 1e-3):
        assert np.mean(p < level) == pytest.approx(level, rel=0.35)


def test_too_few_reference_galaxies_leave_the_test_out():
    assert ValidationNull.from_catalog(np.zeros(50), np.full(50, "validation"),
                                       np.ones(50, bool), "star-like") is None
    assert ValidationNull.from_catalog(np.zeros(500), None, np.ones(500, bool),
                                       "star-like") is None
    split = np.where(np.arange(500) % 2 == 0, "validation", "train")
    galaxies = np.arange(500) < 400
    null = ValidationNull.from_catalog(np.arange(500.0), split, galaxies, "star-like")
    assert len(null.reference_) == 200


def test_bonferroni_over_the_tests_names_the_deciding_one():
    log10_p, decides = combine(np.array([-6.0, -0.1, np.nan]), np.array([-2.0, -8.0, -3.0]),
                               np.array([-1.0, -1.0, -9.0]))
    assert log10_p[:2] == pytest.approx([-6.0 + np.log10(3), -8.0 + np.log10(3)])
    assert decides[:2].tolist() == [0, 1]
    assert np.isnan(log10_p[2])                 # no residual test: no score


def test_a_star_in_the_fibre_gains_far_more_than_any_normal_galaxy_from_a_star_component():
    rng = np.random.default_rng(3)
    wave = np.linspace(0.0, 1.0, 2000)
    galaxy = 1.0 + 0.3 * np.exp(-0.5 * ((wave - 0.6) / 0.01) ** 2)         # continuum + a line
    star = 1.0 + 0.5 * np.sin(40 * wave) * wave                           # absorption bands
    ivar = np.full((400, len(wave)), 400.0)                               # S/N 20 per pixel
    noise = rng.standard_normal(ivar.shape) / 20.0
    normal = blend_improvement(galaxy + noise[:200], ivar[:200], np.tile(galaxy, (200, 1)),
                               np.tile(star, (200, 1)))
    blended = blend_improvement(0.8 * galaxy + 0.2 * star + noise[200:], ivar[200:],
                                np.tile(galaxy, (200, 1)), np.tile(star, (200, 1)))
    assert np.median(normal) < 5.0                     # two free amplitudes: about chi2(2)
    assert blended.min() > 100 * np.quantile(normal, 0.99)
    ivar[0, :] = 0.0
    assert np.isnan(blend_improvement(galaxy[None], ivar[:1], galaxy[None], star[None]))[0]


def _part_columns(chi2_star: np.ndarray, rng) -> dict:
    """Part-file columns of galaxies the galaxy model fits at chi2 1.05, with random residual
    evidence, and the given star-model fits."""
    n = len(chi2_star)
    return {"STORE_ROW": np.arange(n), "CHI2_GALAXY": np.full(n, 1.05),
            "CHI2_STAR": chi2_star, "LOGP_GALAXY": np.zeros(n), "LOGP_STAR": np.zeros(n),
            "OUTLIER_SCORE": rng.random(n), "OUTLIER_PVALUE": rng.uniform(0.01, 1.0, n),
            "OUTLIER_REASON": np.full(n, "spectrum"), "NPIX_GALAXY": np.full(n, 1000),
            "NPIX_STAR": np.full(n, 1000), "FLAG_GALAXY": np.zeros(n, int),
            "FLAG_STAR": np.zeros(n, int)}


def test_the_catalogue_ranks_a_galaxy_the_star_model_explains_first_and_says_why():
    from astropy.table import Table

    from specsift.catalog.classify import StarGalaxyRule
    from specsift.catalog.scoring import assemble_catalog

    rng = np.random.default_rng(2)
    n = 1000
    chi2_star = 1.5 + 0.1 * rng.random(n)
    chi2_star[7] = 1.06                                    # a galaxy with a star in its fibre
    scores = _part_columns(chi2_star, rng)
    meta = Table({"TARGETID": np.arange(n), "Z": np.full(n, 0.1),
                  "SPLIT": np.where(np.arange(n) % 3 == 0, "validation", "train")})
    table = assemble_catalog(scores, meta, StarGalaxyRule("chi2"))
    assert not table["IS_STAR"][7]
    assert table["RANK"][7] == 1 and table["OUTLIER_REASON"][7] == "star-like"
    assert table["OUTLIER_PVALUE"][7] < 1e-6
    np.testing.assert_allclose(table["OUTLIER_SCORE"], -np.log10(table["OUTLIER_PVALUE"]))


def test_galaxies_the_rule_calls_stars_stay_in_the_null_when_the_survey_reports_galaxies():
    from astropy.table import Table

    from specsift.catalog.classify import StarGalaxyRule
    from specsift.catalog.scoring import assemble_catalog

    rng = np.random.default_rng(5)
    n = 3000
    chi2_star = 1.05 + 0.02 * rng.standard_normal(n)        # faint: both models fit to noise
    chi2_star[7] = 0.5                                      # a star the survey called a galaxy
    scores = _part_columns(chi2_star, rng)
    meta = Table({"TARGETID": np.arange(n), "Z": np.full(n, 0.1), "SPECTYPE": ["GALAXY"] * n,
                  "SPLIT": np.where(np.arange(n) % 3 == 0, "validation", "train")})
    table = assemble_catalog(scores, meta, StarGalaxyRule("chi2"))
    called_stars = np.asarray(table["IS_STAR"]) & (np.arange(n) != 7)
    assert called_stars.sum() > 0.3 * n                 # the rule's coin flips at noise level
    assert np.mean(table["PVALUE_STAR_LIKE"][called_stars] < 0.01) < 0.03      # calibrated
    assert table["RANK"][7] == 1 and table["PVALUE_STAR_LIKE"][7] < 1e-6
    meta.remove_column("SPECTYPE")                      # the rule's galaxies only: a cut null
    cut = assemble_catalog(scores, meta, StarGalaxyRule("chi2"))
    assert np.median(cut["PVALUE_STAR_LIKE"][called_stars]) < 1e-2


def test_a_tail_fitted_further_out_follows_a_tail_that_steepens_less():
    rng = np.random.default_rng(7)
    # most normal galaxies gain little; 5% are galaxies the model misfits, and they gain a lot
    reference = np.concatenate([rng.exponential(10.0, 2850), rng.exponential(300.0, 150)])
    near, far = ValidationNull(reference), ValidationNull(reference, tail_from=0.98)
    fresh = np.concatenate([rng.exponential(10.0, 95000), rng.exponential(300.0, 5000)])
    level = 1e-3
    assert level / 5 < np.mean(10.0 ** far.log10_pvalue(fresh) < level) <= level
    assert np.mean(10.0 ** near.log10_pvalue(fresh) < level) > 3 * level   # far too optimistic
    assert ValidationNull(reference[:500], tail_from=0.98).tail_from_ == pytest.approx(0.96)
