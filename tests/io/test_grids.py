"""Survey grids: placement by pixel offset, cropping that is reported, off-grid input refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from specsift import SpecsiftInputError
from specsift.io.grids import DESI_GRID, SDSS_GRID


def test_offset_of_log_grid_pixels_found_from_float32_loglam():
    loglam = (3.5534 + 1e-4 * np.arange(4606)).astype(np.float32)
    assert SDSS_GRID.offset(10.0 ** loglam.astype(np.float64), "f", tol=0.05) == 34


def test_stack_crops_pixels_beyond_the_grid_and_says_which_file(caplog):
    ones = np.ones(10, np.float32)
    good = np.zeros(10, bool)
    logger = logging.getLogger("specsift")
    logger.addHandler(caplog.handler)  # also when configure_logging stopped propagation
    try:
        with caplog.at_level(logging.WARNING, logger="specsift"):
            flux, ivar, mask = SDSS_GRID.stack([(-3, ones * 2, ones, good),
                                                (SDSS_GRID.size - 2, ones * 5, ones, good)],
                                               ["first.fits", "second.fits"])
    finally:
        logger.removeHandler(caplog.handler)
    np.testing.assert_array_equal(flux[0, :7], 2.0)
    assert mask[0, 7:].all() and not ivar[0, 7:].any()
    np.testing.assert_array_equal(flux[1, -2:], 5.0)
    assert mask[1, :-2].all()
    assert "first.fits: 3 pixels" in caplog.text and "second.fits: 8 pixels" in caplog.text


def test_wavelengths_between_grid_pixels_are_refused():
    with pytest.raises(SpecsiftInputError, match="off by up to 0.500 pixels") as err:
        DESI_GRID.offset(3600.4 + 0.8 * np.arange(100), "x.fits", what="B_WAVELENGTH")
    assert err.value.path == "x.fits"
