"""Files, folders and globs reach the readers; specsift.read dispatches by survey."""

from __future__ import annotations

import numpy as np
import pytest

import specsift
from specsift import SpecsiftInputError
from specsift.io import desi, expand_paths


def test_desi_folder_yields_only_coadds(real_data):
    names = [p.name for p in expand_paths(real_data / "desi", patterns=desi.PATTERNS)]
    assert names == sorted(names)
    assert all("coadd" in n for n in names) and len(names) == 5


def test_glob_file_and_list_inputs_give_the_same_spectra(real_data):
    folder = real_data / "desi"
    by_glob = specsift.read(str(folder / "coadd-*-thru*.fits"), survey="desi")
    by_list = specsift.read([folder / "coadd-4-80613-thru20210324.fits",
                             folder / "coadd-5-169-thru20210419.fits"], survey="DESI")
    assert len(by_glob) == 6
    np.testing.assert_array_equal(by_glob.ids, by_list.ids)
    np.testing.assert_array_equal(by_glob.flux, by_list.flux)


@pytest.mark.parametrize("survey, folder, n", [("sdss", "sdss", 21), ("lamost", "lamost", 176)])
def test_read_dispatches_to_the_survey_reader(real_data, survey, folder, n):
    s = specsift.read(real_data / folder, survey=survey)
    assert s.survey == survey and len(s) == n
    for name in ("FILENAME", "ROW", "IS_TARGET"):
        assert name in s.meta.colnames


def test_missing_path_and_empty_glob_are_clean_errors(tmp_path):
    with pytest.raises(SpecsiftInputError, match="no such file"):
        specsift.read(tmp_path / "coadd-none.fits", survey="desi")
    with pytest.raises(SpecsiftInputError, match="no file matches"):
        specsift.read(str(tmp_path / "coadd-*.fits"), survey="desi")
    with pytest.raises(SpecsiftInputError, match="folder holds no"):
        specsift.read(tmp_path, survey="desi")


def test_unknown_survey_is_refused():
    with pytest.raises(ValueError, match="unknown survey"):
        specsift.read("x.fits", survey="gaia")
