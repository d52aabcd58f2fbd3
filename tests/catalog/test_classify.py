"""Star/galaxy likelihood ratio: sign conventions, pixel weighting, unknown ratios."""

from __future__ import annotations

import numpy as np
import pytest

from specsift.catalog.classify import StarGalaxyRule

SCORES = dict(chi2_galaxy=np.array([1.02, 1.30, np.nan, 1.0]),
              chi2_star=np.array([1.10, 1.01, 1.0, 1.0]),
              npix_galaxy=np.array([1000, 1000, 0, 1000]),
              npix_star=np.array([1000, 500, 900, 1000]),
              logp_galaxy=np.array([-5.0, -9.0, np.nan, -7.0]),
              logp_star=np.array([-8.0, -4.0, -3.0, -6.0]))


def test_chi2_ratio_is_half_the_chi2_difference_over_the_shared_pixels():
    ratio = StarGalaxyRule("chi2").log_ratio(**SCORES)
    np.testing.assert_allclose(ratio[[0, 1, 3]], [0.5 * 1000 * -0.08, 0.5 * 500 * 0.29, 0.0])
    assert StarGalaxyRule("chi2").predict(**SCORES).tolist() == [False, True, False, False]


def test_combined_rule_adds_the_latent_density_difference():
    ratio = StarGalaxyRule("chi2+logp").log_ratio(**SCORES)
    assert ratio[3] == pytest.approx(1.0)
    assert StarGalaxyRule("chi2+logp", threshold=2.0).predict(**SCORES).tolist() == \
        [False, True, False, False]


def test_unknown_ratio_is_never_called_a_star():
    assert not StarGalaxyRule("logp").predict(**SCORES)[2]


def test_rule_and_threshold_are_recorded():
    meta = StarGalaxyRule("logp", 1.5).metadata()
    assert meta["STARRULE"] == "logp" and meta["STARTHR"] == 1.5 and "LOGP_STAR" in meta["STARDESC"]
    with pytest.raises(ValueError, match="unknown"):
        StarGalaxyRule("bayes")
