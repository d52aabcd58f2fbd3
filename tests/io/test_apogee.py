"""APOGEE reader: bulk mock files, aspcapStar files, real apStar files and broken inputs."""

import numpy as np
import pytest
from astropy.io import fits

import specsift
from specsift.errors import SpecsiftInputError
from specsift.io.apogee import iter_batches, read


def test_bulk_file_masks_pixels_with_error_above_threshold(mock_apogee_dir):
    spectra = read(mock_apogee_dir / "spectra-mock.fits")
    with fits.open(mock_apogee_dir / "spectra-mock.fits") as hdul:
        error = hdul["ERROR"].data
        ids = np.char.strip(hdul["APOGEE_ID"].data["APOGEE_ID"].astype(str))
    assert spectra.flux.shape == error.shape
    np.testing.assert_array_equal(spectra.mask, ~(error <= 0.05))
    np.testing.assert_allclose(spectra.ivar[~spectra.mask], 1 / error[~spectra.mask] ** 2,
                               rtol=1e-5)
    assert spectra.ids.tolist() == ids.tolist()
    assert spectra.meta["ROW"].tolist() == list(range(len(ids)))
    assert spectra.meta["IS_TARGET"].all() and (spectra.z == 0).all()


def test_wavelength_grid_is_apogee_log_linear_vacuum(mock_apogee_dir):
    spectra = read(mock_apogee_dir / "spectra-mock.fits")
    assert len(spectra.wave) == 8575
    np.testing.assert_allclose(np.log10(spectra.wave), 4.179 + 6e-6 * np.arange(8575), atol=1e-12)


def test_threshold_is_configurable(mock_apogee_dir):
    strict = read(mock_apogee_dir / "spectra-mock.fits", error_threshold=0.01)
    loose = read(mock_apogee_dir / "spectra-mock.fits", error_threshold=0.2)
    assert strict.mask.sum() > loose.mask.sum()


def test_aspcapstar_files_match_bulk_rows(mock_apogee_dir):
    single = specsift.read(mock_apogee_dir / "aspcapStar", survey="apogee")
    bulk = read(mock_apogee_dir / "spectra-mock.fits")
    assert len(single) == 5
    for i, star in enumerate(single.ids):
        j = bulk.ids.tolist().index(star)
        np.testing.assert_array_equal(single.flux[i], bulk.flux[j])
        np.testing.assert_array_equal(single.mask[i], bulk.mask[j])


def test_batches_cover_every_row_once(mock_apogee_dir):
    path = mock_apogee_dir / "spectra-mock.fits"
    rows = np.concatenate([b.meta["ROW"] for b in iter_batches(path, batch_size=100)])
    assert rows.tolist() == list(range(len(read(mock_apogee_dir / "spectra-mock.fits"))))


def test_real_apstar_combined_row(real_data):
    spectra = read(sorted((real_data / "apogee").glob("apStar-*.fits")))
    assert spectra.ids.tolist() == ["2M17335483-2753043", "2M19485057+5005279"]
    assert spectra.flux.shape == (2, 8575)
    with fits.open(real_data / "apogee" / "apStar-dr17-2M19485057+5005279.fits") as hdul:
        np.testing.assert_allclose(spectra.flux[1], hdul[1].data[0], rtol=1e-6)
        bad = (hdul[3].data[0] & 0xFF) != 0
    assert spectra.mask[1][bad].all()
    assert 0.0 < spectra.mask.mean() < 0.5


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_file_names_the_file(tmp_path, mock_apogee_dir):
    source = (mock_apogee_dir / "spectra-mock.fits").read_bytes()
    broken = tmp_path / "spectra-broken.fits"
    broken.write_bytes(source[: len(source) // 3])
    with pytest.raises(SpecsiftInputError, match="spectra-broken.fits"):
        read(broken)


def test_grid_mismatch_between_files_is_an_error(tmp_path, mock_apogee_dir):
    src = sorted((mock_apogee_dir / "aspcapStar").glob("*.fits"))[0]
    with fits.open(src) as hdul:
        hdul[1].header["CRVAL1"] = 4.18
        hdul[2].header["CRVAL1"] = 4.18
        hdul.writeto(tmp_path / "aspcapStar-mock-2M00000000+0000000.fits")
    with pytest.raises(SpecsiftInputError, match="grid"):
        read([src, tmp_path / "aspcapStar-mock-2M00000000+0000000.fits"])


def test_missing_error_hdu_is_an_error(tmp_path):
    path = tmp_path / "aspcapStar-x-2M1.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(10, np.float32))]).writeto(path)
    with pytest.raises(SpecsiftInputError, match="aspcapStar-x-2M1.fits"):
        read(path)
