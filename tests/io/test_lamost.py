"""LAMOST reader: header grid in vacuum, header class/redshift in meta, clean errors."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from specsift import SpecsiftInputError
from specsift.io import lamost
from specsift.io.grids import LAMOST_GRID

STAR = "spec-55862-B6212_sp06-003.fits"


@pytest.fixture(scope="session")
def real_lamost(real_data):
    return lamost.read(real_data / "lamost")



def test_every_real_file_loads_with_header_class_subclass_and_z(real_lamost, real_data):
    files = sorted((real_data / "lamost").glob("*.fits"))
    assert len(real_lamost) == len(files) == 176
    for i in (0, 57, 175):
        head = fits.getheader(real_lamost.meta["FILENAME"][i])
        assert real_lamost.meta["CLASS"][i] == head["CLASS"].strip()
        assert real_lamost.meta["SUBCLASS"][i] == head["SUBCLASS"].strip()
        assert real_lamost.z[i] == pytest.approx(head["Z"], abs=1e-9)
        assert real_lamost.meta["SN_G"][i] == pytest.approx(head["SN_G"])
    assert real_lamost.meta["IS_TARGET"].all()


def test_ids_follow_the_lamost_file_name(real_lamost):
    for path, ident in zip(real_lamost.meta["FILENAME"], real_lamost.ids):
        assert path.endswith(f"spec-{ident}.fits")


def test_spectra_sit_on_the_header_log_grid_in_vacuum(real_lamost):
    head = fits.getheader(real_lamost.meta["FILENAME"][0])
    assert head["VACUUM"] is True            # DR1 is in vacuum: no air conversion is needed
    data = fits.getdata(real_lamost.meta["FILENAME"][0])
    k = int(round((head["COEFF0"] - LAMOST_GRID.start) / LAMOST_GRID.step))
    n = data.shape[1]
    assert real_lamost.wave[k] == pytest.approx(10 ** head["COEFF0"], rel=1e-9)
    assert real_lamost.wave[k + n - 1] == pytest.approx(10 ** (head["COEFF0"] + 1e-4 * (n - 1)))
    np.testing.assert_array_equal(real_lamost.flux[0, k:k + n], data[0])
    np.testing.assert_array_equal(real_lamost.ivar[0, k:k + n], data[1])
    expected = (data[3] != 0) | ~(data[1] > 0)
    np.testing.assert_array_equal(real_lamost.mask[0, k:k + n], expected)
    assert real_lamost.mask[:, :k].all()


def test_air_wavelengths_are_refused(real_data, edited_copy):
    def edit(hdul):
        hdul[0].header["VACUUM"] = False
    with pytest.raises(SpecsiftInputError, match="air"):
        lamost.read(edited_copy(real_data / "lamost" / STAR, edit))


def test_missing_grid_keyword_is_named(real_data, edited_copy):
    def edit(hdul):
        del hdul[0].header["COEFF1"]
    with pytest.raises(SpecsiftInputError, match="COEFF1"):
        lamost.read(edited_copy(real_data / "lamost" / STAR, edit))


def test_truncated_file_names_file_and_hdu(real_data, tmp_path):
    data = (real_data / "lamost" / STAR).read_bytes()
    cut = tmp_path / STAR
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(SpecsiftInputError, match="truncated.*HDU PRIMARY") as err:
        lamost.read(cut)
    assert err.value.path == str(cut)
