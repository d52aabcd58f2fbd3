"""Field and member samples: every cut of SampleConfig is applied and can be changed."""

import numpy as np
import pytest
from astropy.table import Table

from specsift.errors import SpecsiftInputError
from specsift.io.catalogs import read_allstar, read_occam
from specsift.preprocess.stellar_samples import SampleConfig, select_samples


def _catalogues():
    ids = [f"S{i}" for i in range(8)]
    allstar = Table({"APOGEE_ID": ids,
                     "TEFF": [4500, 4500, 4500, 3900, 4500, 4500, 4500, 4500.0],
                     "LOGG": [2.0, 2.0, 2.0, 2.0, 3.5, 2.0, 2.0, 2.0],
                     "ASPCAPFLAG": [0, 0, 0, 0, 0, 1 << 23, 0, 0],
                     "VHELIO_AVG": np.zeros(8), "AK_TARG": np.zeros(8), "SNR": np.ones(8) * 100,
                     "X_H": np.zeros((8, 2))})
    allstar["X_H"][6, 1] = -9999.99
    allstar.meta["ELEMENTS"] = ["FE", "MG"]
    occam = Table({"CLUSTER": ["A", "A", "B", "B", "C", "A"],
                   "APOGEE_ID": ["S0", "S1", "S2", "S3", "S4", "S7"],
                   "CG_PROB": [0.9, 0.95, 0.9, 0.85, 0.99, 0.5]})
    return allstar, occam


def test_cuts_select_the_expected_stars():
    allstar, occam = _catalogues()
    s = select_samples(allstar, occam, SampleConfig(species=("FE", "MG")))
    # S3 (cool) and S4 (high logg) are members, so only S7 (CG_PROB 0.5) is a field star;
    # S5 is STAR_BAD, S6 misses MG; cluster C has a single member and is dropped.
    assert s.field.tolist() == [7]
    assert s.members.tolist() == [0, 1, 2, 3]
    assert s.clusters.tolist() == ["A", "A", "B", "B"]


def test_thresholds_come_from_the_config():
    allstar, occam = _catalogues()
    s = select_samples(allstar, occam, SampleConfig(species=("FE",), min_cg_prob=0.4))
    assert 7 in s.members and 6 in s.field


def test_members_are_never_field_stars(mock_apogee_dir):
    allstar = read_allstar(mock_apogee_dir / "allStar-mock.fits")
    s = select_samples(allstar, read_occam(mock_apogee_dir / "occam_member-mock.fits"))
    assert not set(s.field) & set(s.members)
    teff = np.asarray(allstar["TEFF"])[s.field]
    assert ((teff > 4000) & (teff < 5000)).all()
    names, counts = np.unique(s.clusters, return_counts=True)
    assert len(names) >= 2 and counts.min() >= 2


def test_no_usable_clusters_is_an_error():
    allstar, occam = _catalogues()
    with pytest.raises(SpecsiftInputError, match="two clusters"):
        select_samples(allstar, occam, SampleConfig(species=("FE",), min_cg_prob=0.9))
