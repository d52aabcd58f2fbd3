"""The preprocessing pipeline accounts for every object and fills the store's columns."""

from __future__ import annotations

import numpy as np

from specsift.preprocess import default_config, preprocess

from .helpers import flat_spectra


def test_every_object_is_kept_or_rejected_with_file_row_and_id():
    s = flat_spectra([2.0, 4.0, 3.0, 5.0], z=[0.1, 0.2, np.nan, 0.1],
                     SPECTYPE=np.array(["GALAXY", "GALAXY", "GALAXY", "STAR"]))
    s.flux[1, 50] = np.nan
    config = default_config("desi")
    out = preprocess(s, config, "all")
    assert out.meta["ID"].tolist() == [100, 103]
    assert out.rejects["ID"].tolist() == ["101", "102"]
    assert out.rejects["ROW"].tolist() == [1, 2]
    assert out.rejects["FILENAME"].tolist() == ["hand.fits"] * 2
    assert out.rejects["REASON"].tolist() == ["bad data: non-finite flux where ivar > 0",
                                              "normalisation: no redshift"]
    assert out.flux.shape == (2, s.wave.size)
    for name in ("ID", "Z", "SPLIT", "NORM", "SNR", "MASKED_FRACTION", "SAMPLE", "SPECTYPE"):
        assert name in out.meta.colnames
    assert np.allclose(out.meta["NORM"], [2.0, 5.0], rtol=0.01)
    # flat level / sigma 0.1 -> S/N per pixel = level / 0.1 before normalising, same after
    assert np.allclose(out.meta["SNR"], [20.0, 50.0], rtol=0.02)
    sky_fraction = out.meta["MASKED_FRACTION"][0]
    assert 0.10 < sky_fraction < 0.20
    assert np.isclose((out.ivar[0] == 0).mean(), sky_fraction)


def test_sample_cuts_apply_and_are_reported():
    s = flat_spectra([1.0, 1.0], z=[0.1, 0.1], SPECTYPE=np.array(["GALAXY", "STAR"]),
                     ZWARN=[0, 0], DESI_TARGET=np.array([1 << 61, 1 << 61]))
    out = preprocess(s, default_config("desi"), "mws")
    assert out.meta["ID"].tolist() == [101] and out.meta["SAMPLE"][0] == "mws"
    assert out.rejects["REASON"][0] == "selection: SPECTYPE == STAR"
