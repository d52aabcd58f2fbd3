"""SDSS/BOSS reader: many files on one log grid, HDU 2 classes and redshifts, clean errors."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from specsift import SpecsiftInputError
from specsift.io import sdss
from specsift.io.grids import SDSS_GRID

GALAXY = "spec-4055-55359-0006.fits"


@pytest.fixture(scope="session")
def real_sdss(real_data):
    return sdss.read(real_data / "sdss")



def test_every_real_file_loads_once(real_sdss, real_data):
    files = sorted((real_data / "sdss").glob("*.fits"))
    assert len(real_sdss) == len(files) == 21
    assert sorted(real_sdss.meta["FILENAME"]) == sorted(str(f) for f in files)


def test_class_z_and_zwarning_match_hdu2(real_sdss):
    for i, path in enumerate(real_sdss.meta["FILENAME"]):
        specobj = fits.getdata(path, 2)
        assert real_sdss.meta["CLASS"][i] == specobj["CLASS"][0].strip()
        assert real_sdss.z[i] == pytest.approx(specobj["Z"][0], abs=1e-7)
        assert real_sdss.meta["ZWARNING"][i] == specobj["ZWARNING"][0]
    assert set(real_sdss.meta["CLASS"]) == {"GALAXY", "QSO", "STAR"}
    np.testing.assert_array_equal(real_sdss.meta["SPECTYPE"], real_sdss.meta["CLASS"])


def test_files_with_different_starts_are_placed_by_pixel_offset(real_sdss):
    starts = set()
    for i, path in enumerate(real_sdss.meta["FILENAME"]):
        coadd = fits.getdata(path, 1)
        k = int(np.argmin(abs(np.log10(real_sdss.wave) - coadd["loglam"][0])))
        starts.add(k)
        n = len(coadd)
        np.testing.assert_allclose(np.log10(real_sdss.wave[k:k + n]), coadd["loglam"], atol=2e-6)
        np.testing.assert_array_equal(real_sdss.flux[i, k:k + n], coadd["flux"])
        np.testing.assert_array_equal(real_sdss.ivar[i, k:k + n], coadd["ivar"])
        assert real_sdss.mask[i, :k].all() and not real_sdss.ivar[i, :k].any()
    assert len(starts) > 3


def test_grid_is_log_lambda_in_1e4_dex_steps(real_sdss):
    np.testing.assert_allclose(np.diff(np.log10(real_sdss.wave)), 1e-4, atol=1e-12)
    assert real_sdss.wave[0] < 3600 and real_sdss.wave[-1] > 10300


def test_ids_are_plate_mjd_fiber(real_sdss):
    names = [p.rsplit("/", 1)[-1] for p in real_sdss.meta["FILENAME"]]
    for name, ident in zip(names, real_sdss.ids):
        if name.startswith("spec-"):
            assert name == f"spec-{ident}.fits"
    assert len(set(real_sdss.ids)) == len(real_sdss)


def test_brightsky_pixels_are_masked_but_badflat_spectra_are_kept(real_sdss):
    for name in ("spec-10000-57346-0003.fits", "spec-0266-51602-0031.fits"):
        i = [p.endswith(name) for p in real_sdss.meta["FILENAME"]].index(True)
        coadd = fits.getdata(real_sdss.meta["FILENAME"][i], 1)
        k = int(np.argmin(abs(np.log10(real_sdss.wave) - coadd["loglam"][0])))
        mask = real_sdss.mask[i, k:k + len(coadd)]
        brightsky = (coadd["and_mask"] & (1 << 23)) != 0
        assert brightsky.any() and mask[brightsky].all()
        usable = (coadd["and_mask"] & sdss.BAD_AND_MASK_BITS == 0) & (coadd["ivar"] > 0)
        assert not mask[usable].any()
        assert usable.mean() > 0.9   # BADFLAT (bit 2) alone does not mask a spectrum


def test_truncated_file_names_file_and_hdu(real_data, tmp_path):
    data = (real_data / "sdss" / GALAXY).read_bytes()
    cut = tmp_path / GALAXY
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(SpecsiftInputError, match="truncated.*HDU") as err:
        sdss.read(cut)
    assert err.value.path == str(cut)


def test_missing_redshift_hdu_is_named(real_data, edited_copy):
    path = edited_copy(real_data / "sdss" / GALAXY, lambda h: [h.pop() for _ in range(len(h) - 2)])
    with pytest.raises(SpecsiftInputError, match="missing HDU SPECOBJ") as err:
        sdss.read(path)
    assert err.value.path == str(path)


def test_loglam_off_the_grid_is_refused(real_data, edited_copy):
    def edit(hdul):
        hdul[1].data["loglam"] += 0.3e-4
    with pytest.raises(SpecsiftInputError, match="not on the SDSS/BOSS grid"):
        sdss.read(edited_copy(real_data / "sdss" / GALAXY, edit))


def test_air_wavelengths_are_refused(real_data, edited_copy):
    def edit(hdul):
        hdul[0].header["VACUUM"] = False
    with pytest.raises(SpecsiftInputError, match="air"):
        sdss.read(edited_copy(real_data / "sdss" / GALAXY, edit))


def test_chunks_share_the_grid_and_cover_every_file(real_data):
    chunks = list(sdss.iter_read(real_data / "sdss", files_per_chunk=8))
    assert [len(c) for c in chunks] == [8, 8, 5]
    assert all(np.array_equal(c.wave, SDSS_GRID.wave) for c in chunks)
