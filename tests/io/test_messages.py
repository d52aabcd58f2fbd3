"""Reader messages name the real problem: the HDU or keyword missing, and what is assumed."""

from __future__ import annotations

import logging

import pytest

from specsift import SpecsiftInputError
from specsift.io import lamost, perobject, sdss

SDSS_GALAXY = "spec-4055-55359-0006.fits"
LAMOST_STAR = "spec-55862-B6212_sp06-003.fits"


def test_sdss_file_without_its_specobj_hdu_says_so_not_how_many_rows_hdu2_has(real_data,
                                                                             edited_copy):
    path = edited_copy(real_data / "sdss" / SDSS_GALAXY, lambda h: h.pop(2))  # SPZLINE moves up
    with pytest.raises(SpecsiftInputError) as err:
        sdss.read(path)
    message = str(err.value)
    assert "missing HDU SPECOBJ (or SPALL)" in message and "SPZLINE" in message
    assert "rows" not in message and str(path) in message


def test_lamost_missing_grid_keyword_reads_as_one_clean_sentence(real_data, edited_copy):
    def edit(hdul):
        del hdul[0].header["COEFF0"]

    with pytest.raises(SpecsiftInputError) as err:
        lamost.read(edited_copy(real_data / "lamost" / LAMOST_STAR, edit))
    message = str(err.value)
    assert "primary header has no COEFF0 keyword" in message
    assert "Keyword" not in message and "not found" not in message


@pytest.mark.parametrize("survey, folder, name", [("sdss", "sdss", SDSS_GALAXY),
                                                  ("lamost", "lamost", LAMOST_STAR)])
def test_missing_vacuum_keyword_is_assumed_out_loud(real_data, edited_copy, caplog, monkeypatch,
                                                    survey, folder, name):
    monkeypatch.setattr(perobject, "_warned_no_vacuum", set())

    def edit(hdul):
        del hdul[0].header["VACUUM"]

    path = edited_copy(real_data / folder / name, edit)
    reader = {"sdss": sdss, "lamost": lamost}[survey]
    with caplog.at_level(logging.WARNING, logger="specsift.io"):
        reader.read(path)
    assert any("no VACUUM keyword" in r.getMessage() and str(path) in r.getMessage()
               for r in caplog.records)
