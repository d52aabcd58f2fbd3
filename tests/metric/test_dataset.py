"""Loading RSCA samples: censoring, ordering by catalogue id, and errors naming the star."""

import re

import numpy as np
import pytest
from astropy.io import fits

from specsift.errors import SpecsiftInputError
from specsift.metric.dataset import load_spectra


def test_rows_follow_requested_ids_and_censoring(mock_apogee_dir):
    with fits.open(mock_apogee_dir / "spectra-mock.fits") as hdul:
        ids = np.char.strip(hdul["APOGEE_ID"].data["APOGEE_ID"].astype(str))
        flux, error = hdul["FLUX"].data[[5, 2]], hdul["ERROR"].data[[5, 2]]
    matrix = load_spectra(mock_apogee_dir / "spectra-mock.fits", [ids[5], ids[2]],
                          windows=[(15270.0, 15275.0)])
    assert matrix.flux.shape == (2, 7214)
    expected = np.where(error[:, matrix.pixels] <= 0.05, flux[:, matrix.pixels], np.nan)
    inside = (matrix.wave >= 15270) & (matrix.wave <= 15275)
    expected[:, inside] = np.nan
    np.testing.assert_array_equal(np.isnan(matrix.flux), np.isnan(expected))
    np.testing.assert_array_equal(matrix.flux[~np.isnan(expected)], expected[~np.isnan(expected)])


def test_fully_censored_spectrum_names_file_row_and_id(mock_apogee_dir, tmp_path):
    path = tmp_path / "spectra-bad.fits"
    with fits.open(mock_apogee_dir / "spectra-mock.fits") as hdul:
        hdul["ERROR"].data[3] = 1e10
        ids = np.char.strip(hdul["APOGEE_ID"].data["APOGEE_ID"].astype(str))
        hdul.writeto(path)
    where = re.escape(f"spectra-bad.fits, row 3, id {ids[3]}")
    with pytest.raises(SpecsiftInputError, match=where):
        load_spectra(path, ids[:5])


def test_unknown_ids_are_reported(mock_apogee_dir):
    with pytest.raises(SpecsiftInputError, match="2M99999999"):
        load_spectra(mock_apogee_dir / "spectra-mock.fits", ["2M99999999+9999999"])
