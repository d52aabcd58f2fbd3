"""Fixtures shared by the reader tests."""

from __future__ import annotations

import pytest
from astropy.io import fits


@pytest.fixture
def edited_copy(tmp_path):
    """Write a copy of a real FITS file after ``edit(hdul)``, to make a bad input from a good one."""

    def make(source, edit, name=None):
        with fits.open(source) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        edit(hdul)
        out = tmp_path / (name or source.name)
        hdul.writeto(out)
        return out

    return make
