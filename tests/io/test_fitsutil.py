"""FITS helpers: the direct binary-table reader agrees with astropy; truncation is caught."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from specsift import SpecsiftInputError
from specsift.io.fitsutil import image, open_fits, table


@pytest.mark.parametrize("name, hdu", [
    ("sdss/spec-10000-57346-0002.fits", 2),     # SPALL: 236 columns, uint64 SPECOBJID (TZERO)
    ("sdss/spec-0266-51602-0031.fits", 2),      # SPECOBJ: text SPECOBJID, logical columns
    ("sdss/spec-0266-51602-0031.fits", 1),
    ("desi/coadd-sv3-dark-26065.fits", "FIBERMAP"),
    ("desi/redrock-4-80613-thru20210324.fits", "REDSHIFTS"),
])
def test_table_columns_equal_astropy(real_data, name, hdu):
    path = real_data / name
    with open_fits(path) as hdul:
        ours = table(hdul, hdu, path)
        ref = hdul[hdu].data
        assert ours.colnames == ref.columns.names
        for column in ref.columns.names:
            expected = np.asarray(ref[column])
            if expected.dtype.kind in "SU":
                expected = np.char.strip(expected.astype(str))
            np.testing.assert_array_equal(np.asarray(ours[column]), expected, err_msg=column)
            assert np.asarray(ours[column]).dtype.kind == expected.dtype.kind, column


def test_table_columns_are_found_whatever_their_case(real_data):
    path = real_data / "sdss" / "spec-0266-51602-0031.fits"
    with open_fits(path) as hdul:
        got = table(hdul, 1, path, columns=["LOGLAM", "flux", "missing"])
        assert got.colnames == ["LOGLAM", "flux"]
        np.testing.assert_array_equal(got["LOGLAM"], hdul[1].data["loglam"])


def test_image_is_native_endian_and_unchanged(real_data):
    path = real_data / "desi" / "coadd-4-80613-thru20210324.fits"
    with fits.open(path) as hdul:
        expected = hdul["R_FLUX"].data.astype(np.float32)
    with open_fits(path) as hdul:
        got = image(hdul, "R_FLUX", path, np.float32)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cut_bytes, message", [
    (1000, "truncated: HDU SPZLINE needs"),             # inside the last HDU's data
    (3000, "bytes after HDU SPECOBJ are not a complete"),  # inside the last HDU's header
])
def test_file_shorter_than_its_headers_is_refused(real_data, tmp_path, cut_bytes, message):
    data = (real_data / "sdss" / "spec-0266-51602-0031.fits").read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[:-cut_bytes])
    with pytest.raises(SpecsiftInputError, match=message) as err:
        with open_fits(cut):
            pass
    assert err.value.path == str(cut)
