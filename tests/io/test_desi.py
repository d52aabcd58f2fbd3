"""DESI coadd reader: arm merging, Redrock join, fibre flags and clean errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import specsift
from specsift import SpecsiftInputError
from specsift.io import desi
from specsift.io.grids import DESI_GRID

GALAXY = "coadd-4-80613-thru20210324.fits"


@pytest.fixture(scope="session")
def mock_spectra(mock_desi_dir):
    return desi.read(mock_desi_dir)


@pytest.fixture(scope="session")
def mock_truth(mock_desi_dir):
    return fits.getdata(mock_desi_dir / "truth.fits", "TRUTH")



# ----------------------------------------------------------------------------- mock survey
def test_mock_every_object_read_once_with_truth_targetid_and_reported_z(mock_spectra, mock_truth):
    assert len(mock_spectra) == len(mock_truth)
    assert len(np.unique(mock_spectra.ids)) == len(mock_spectra)
    order = np.argsort(mock_truth["TARGETID"])
    pos = np.searchsorted(mock_truth["TARGETID"], mock_spectra.ids, sorter=order)
    match = order[pos]
    np.testing.assert_array_equal(mock_truth["TARGETID"][match], mock_spectra.ids)
    np.testing.assert_allclose(mock_spectra.z, mock_truth["REPORTED_Z"][match], rtol=0, atol=1e-7)
    reported = np.char.strip(np.asarray(mock_truth["REPORTED_SPECTYPE"][match]).astype(str))
    np.testing.assert_array_equal(np.asarray(mock_spectra.meta["SPECTYPE"]), reported)


def test_mock_meta_names_file_and_row_of_every_object(mock_spectra, mock_desi_dir):
    meta = mock_spectra.meta
    for name in ("FILENAME", "ROW", "IS_TARGET", "TARGETID", "DESI_TARGET", "BGS_TARGET",
                 "MWS_TARGET", "OBJTYPE", "Z", "ZERR", "ZWARN", "SPECTYPE", "DELTACHI2"):
        assert name in meta.colnames
    i = 237
    with fits.open(meta["FILENAME"][i]) as hdul:
        assert hdul["FIBERMAP"].data["TARGETID"][meta["ROW"][i]] == mock_spectra.ids[i]
        np.testing.assert_array_equal(hdul["B_FLUX"].data[meta["ROW"][i], :100],
                                      mock_spectra.flux[i, :100])
    assert meta["IS_TARGET"].all()


def test_arms_merged_by_inverse_variance_in_both_overlaps(mock_spectra, mock_desi_dir):
    path = sorted(mock_desi_dir.glob("coadd-*.fits"))[0]
    with fits.open(path) as hdul:
        arm = {a: (hdul[f"{a}_WAVELENGTH"].data, hdul[f"{a}_FLUX"].data, hdul[f"{a}_IVAR"].data,
                   hdul[f"{a}_MASK"].data) for a in "BRZ"}
    rows = np.flatnonzero(mock_spectra.meta["FILENAME"] == str(path))
    for first, second, wave in (("B", "R", 5780.0), ("R", "Z", 7560.0)):
        (w1, f1, i1, m1), (w2, f2, i2, m2) = arm[first], arm[second]
        p1, p2 = np.argmin(abs(w1 - wave)), np.argmin(abs(w2 - wave))
        both = (i1[:, p1] > 0) & (i2[:, p2] > 0) & (m1[:, p1] == 0) & (m2[:, p2] == 0)
        r = int(np.flatnonzero(both)[0])
        expected = (i1[r, p1] * f1[r, p1] + i2[r, p2] * f2[r, p2]) / (i1[r, p1] + i2[r, p2])
        k = int(np.argmin(abs(DESI_GRID.wave - wave)))
        assert mock_spectra.flux[rows[r], k] == pytest.approx(expected, rel=1e-5)
        assert mock_spectra.ivar[rows[r], k] == pytest.approx(i1[r, p1] + i2[r, p2], rel=1e-5)
        # the weighted mean differs from the plain mean: the test sees the weighting
        assert expected != pytest.approx((f1[r, p1] + f2[r, p2]) / 2, rel=1e-3)


def test_mask_marks_allbadpix_but_keeps_cosmic_pixels_with_ivar(mock_spectra, mock_desi_dir):
    path = sorted(mock_desi_dir.glob("coadd-*.fits"))[0]
    with fits.open(path) as hdul:
        mask, ivar = hdul["B_MASK"].data, hdul["B_IVAR"].data
    rows = np.flatnonzero(mock_spectra.meta["FILENAME"] == str(path))
    b = slice(0, mask.shape[1] - 51)  # B pixels outside the B/R overlap
    merged = mock_spectra.mask[rows][:, b]
    allbad = (mask[:, b] & 2) != 0
    cosmic_only = (mask[:, b] == (1 | 4)) & (ivar[:, b] > 0)
    assert allbad.any() and cosmic_only.any()
    assert merged[allbad].all()
    assert not merged[cosmic_only].any()
    assert desi.read(path, bad_bits=~0).mask[:, b][cosmic_only].all()


def test_merge_arms_uses_the_good_arm_where_the_other_is_bad():
    n = 2
    ones = np.ones((n, 10), np.float32)
    b = (DESI_GRID.offset(3600 + 0.8 * np.arange(10), "b"), ones * 1.0, ones * 4.0,
         np.zeros((n, 10), bool))
    r_bad = np.zeros((n, 10), bool)
    r_bad[0, :] = True        # object 0: r arm bad everywhere
    r_bad[1, 0] = True       # object 1: r bad on the first overlap pixel (grid pixel 5)
    r = (5, ones * 3.0, ones * 1.0, r_bad)
    flux, ivar, mask = desi.merge_arms([b, r], n)
    # object 0: only b counts in the overlap (pixels 5-9)
    np.testing.assert_allclose(flux[0, 5:10], 1.0)
    np.testing.assert_allclose(ivar[0, 5:10], 4.0)
    # object 1: weighted (4*1 + 1*3)/5 where both are good, b alone at pixel 5
    np.testing.assert_allclose(flux[1, 6:10], 7.0 / 5.0)
    np.testing.assert_allclose(ivar[1, 6:10], 5.0)
    assert flux[1, 5] == 1.0
    # r alone beyond the overlap; nothing beyond r: masked with ivar 0
    np.testing.assert_allclose(flux[:, 10:15], 3.0)
    assert mask[:, 15:].all() and not ivar[:, 15:].any() and not mask[1, :15].any()


def test_merge_arms_masks_a_pixel_bad_in_every_arm_without_dropping_its_flux():
    bad = np.ones((1, 4), bool)
    flux, ivar, mask = desi.merge_arms([(0, np.full((1, 4), 2.0, np.float32),
                                         np.zeros((1, 4), np.float32), bad),
                                        (2, np.full((1, 4), 4.0, np.float32),
                                         np.zeros((1, 4), np.float32), bad)], 1)
    assert mask[0, :6].all() and not ivar[0, :6].any()
    np.testing.assert_allclose(flux[0, :6], [2, 2, 3, 3, 4, 4])


def test_explicit_redrock_option_joins_a_coadd_with_no_sibling(mock_desi_dir, tmp_path):
    coadd = sorted(mock_desi_dir.glob("coadd-*.fits"))[1]
    (tmp_path / coadd.name).symlink_to(coadd)
    alone = desi.read(tmp_path / coadd.name)
    assert np.isnan(alone.z).all() and (alone.meta["ZWARN"] == -1).all()
    joined = desi.read(tmp_path / coadd.name, redrock=str(mock_desi_dir / "redrock-*.fits"))
    with fits.open(coadd.with_name(coadd.name.replace("coadd", "redrock"))) as hdul:
        z = dict(zip(hdul["REDSHIFTS"].data["TARGETID"], hdul["REDSHIFTS"].data["Z"]))
    np.testing.assert_allclose(joined.z, [z[t] for t in joined.ids])
    by_folder = desi.read(tmp_path / coadd.name, redrock=mock_desi_dir)
    np.testing.assert_array_equal(by_folder.z, joined.z)
    assert np.isnan(desi.read(coadd, redrock=False).z).all()


# ----------------------------------------------------------------------------- real files
def test_real_grid_is_7781_pixels_of_0p8_angstrom(real_data):
    s = desi.read(real_data / "desi" / GALAXY)
    assert s.wave.size == 7781
    assert s.wave[0] == 3600.0 and s.wave[-1] == pytest.approx(9824.0)
    np.testing.assert_allclose(np.diff(s.wave), 0.8, atol=1e-9)


def test_real_galaxy_has_redrock_z_and_halpha_emission_at_8985(real_data):
    s = desi.read(real_data / "desi" / GALAXY)
    with fits.open(real_data / "desi" / GALAXY.replace("coadd", "redrock")) as hdul:
        z = hdul["REDSHIFTS"].data["Z"][0]
    assert s.z[0] == pytest.approx(z) and s.z[0] == pytest.approx(0.369, abs=1e-3)
    assert s.meta["SPECTYPE"][0] == "GALAXY"
    line = 6564.6 * (1 + s.z[0])                     # H-alpha, vacuum
    good = ~s.mask[0]
    window = good & (abs(s.wave - line) < 8)
    continuum = good & (abs(s.wave - line) > 30) & (abs(s.wave - line) < 120)
    peak = s.flux[0][window].max()
    level, noise = np.median(s.flux[0][continuum]), np.std(s.flux[0][continuum])
    assert peak > level + 10 * noise
    assert abs(s.wave[window][np.argmax(s.flux[0][window])] - line) < 3


def test_real_folder_reads_every_coadd_and_skips_other_products(real_data):
    s = specsift.read(real_data / "desi", survey="desi")
    files = {str(f).rsplit("/", 1)[-1] for f in s.meta["FILENAME"]}
    assert files == {GALAXY, "coadd-special-dark-27247.fits", "coadd-5-169-thru20210419.fits",
                     "coadd-sv3-dark-26065.fits", "quasarnp-test_coadd.fits"}
    assert len(s) == 1 + 1 + 5 + 5 + 25


def test_quasarnp_file_without_fibermap_or_mask_loads_25_spectra(real_data):
    s = desi.read(real_data / "desi" / "quasarnp-test_coadd.fits")
    assert len(s) == 25 and s.flux.shape == (25, 7781)
    assert np.isnan(s.z).all() and s.meta["IS_TARGET"].all()
    np.testing.assert_array_equal(s.meta["ROW"], np.arange(25))
    with fits.open(real_data / "desi" / "quasarnp-test_coadd.fits") as hdul:
        np.testing.assert_array_equal(s.flux[:, :100], hdul["B_FLUX"].data[:, :100])


@pytest.mark.parametrize("name", ["coadd-5-169-thru20210419.fits", "coadd-sv3-dark-26065.fits"])
def test_sky_and_unassigned_fibres_are_flagged_not_dropped(real_data, name):
    s = desi.read(real_data / "desi" / name)
    with fits.open(real_data / "desi" / name) as hdul:
        fibermap = hdul["FIBERMAP"].data
    assert len(s) == len(fibermap)
    expected = (fibermap["OBJTYPE"] == "TGT") & (fibermap["TARGETID"] > 0)
    np.testing.assert_array_equal(s.meta["IS_TARGET"], expected)
    assert 0 < expected.sum() < len(s)
    if "SKY" in set(fibermap["OBJTYPE"]):
        assert not s.meta["IS_TARGET"][fibermap["OBJTYPE"] == "SKY"].any()


def test_pixels_outside_the_overlaps_are_copied_unchanged(real_data):
    s = desi.read(real_data / "desi" / "coadd-sv3-dark-26065.fits")
    with fits.open(real_data / "desi" / "coadd-sv3-dark-26065.fits") as hdul:
        np.testing.assert_array_equal(s.flux[:, :2700], hdul["B_FLUX"].data[:, :2700])
        np.testing.assert_array_equal(s.ivar[:, -2700:], hdul["Z_IVAR"].data[:, -2700:])
        np.testing.assert_array_equal(s.mask[:, :2700], ~(hdul["B_IVAR"].data[:, :2700] > 0))


def test_nan_flux_stays_nan_and_is_masked(real_data, edited_copy):
    def edit(hdul):
        hdul["B_FLUX"].data[0, 10:20] = np.nan
        hdul["R_IVAR"].data[0, 500:505] = -1.0
    s = desi.read(edited_copy(real_data / "desi" / GALAXY, edit, "coadd-nan.fits"), redrock=False)
    assert np.isnan(s.flux[0, 10:20]).all() and s.mask[0, 10:20].all()
    k = DESI_GRID.offset([5760.0], "r") + 500
    assert s.mask[0, k:k + 5].all() and (s.ivar[0, k:k + 5] == -1).all()
    assert not s.mask[0, 20:30].any()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("fraction", [0.3, 0.97])
def test_truncated_coadd_names_file_and_hdu(real_data, tmp_path, fraction):
    data = (real_data / "desi" / GALAXY).read_bytes()
    cut = tmp_path / "coadd-cut.fits"
    cut.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(SpecsiftInputError, match="truncated") as err:
        desi.read(cut)
    assert err.value.path == str(cut) and "HDU" in str(err.value)


def test_missing_arm_hdu_is_named(real_data, edited_copy):
    path = edited_copy(real_data / "desi" / GALAXY, lambda h: h.pop("R_IVAR"), "coadd-noivar.fits")
    with pytest.raises(SpecsiftInputError, match="missing HDU R_IVAR") as err:
        desi.read(path)
    assert err.value.path == str(path)


def test_wavelengths_off_the_desi_grid_are_refused(real_data, edited_copy):
    def edit(hdul):
        hdul["R_WAVELENGTH"].data = hdul["R_WAVELENGTH"].data + 0.3
    path = edited_copy(real_data / "desi" / GALAXY, edit, "coadd-shifted.fits")
    with pytest.raises(SpecsiftInputError, match="R_WAVELENGTH is not on the DESI grid"):
        desi.read(path)


@pytest.mark.parametrize("name, message", [
    ("redrock-test.fits", "Redrock redshift file"),
    ("spectra-5-169-thru20210419.fits", "per-exposure"),
    ("stack-LRG.fits", "not a DESI coadd"),
])
def test_files_that_are_not_coadds_are_refused_with_what_they_are(real_data, name, message):
    with pytest.raises(SpecsiftInputError, match=message) as err:
        desi.read(real_data / "desi" / name)
    assert name in str(err.value)


def test_every_real_desi_file_loads_or_says_what_it_is(real_data):
    documented = ("Redrock redshift file", "per-exposure spectra file", "not a DESI coadd")
    loaded = 0
    for path in sorted((real_data / "desi").glob("*.fits")):
        try:
            loaded += len(desi.read(path)) > 0
        except SpecsiftInputError as err:
            assert any(text in str(err) for text in documented), str(err)
            assert "coadd" not in path.name
    assert loaded == 5


def test_corrupt_file_is_a_clean_error(tmp_path):
    path = tmp_path / "coadd-junk.fits"
    path.write_bytes(b"not a fits file" * 500)
    with pytest.raises(SpecsiftInputError, match="not a readable FITS file"):
        desi.read(path)
