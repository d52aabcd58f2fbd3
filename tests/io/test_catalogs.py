"""allStar and OCCAM readers: columns, abundance layouts and clear errors."""

import numpy as np
import pytest
from astropy.io import fits

from specsift.errors import SpecsiftInputError
from specsift.io.catalogs import abundance_matrix, read_allstar, read_occam


def test_allstar_abundances_follow_the_elements_hdu(mock_apogee_dir):
    table = read_allstar(mock_apogee_dir / "allStar-mock.fits")
    with fits.open(mock_apogee_dir / "allStar-mock.fits") as hdul:
        raw = hdul[1].data
    elements = table.meta["ELEMENTS"]
    assert elements[:4] == ["C", "CI", "N", "O"] and len(elements) == 21
    np.testing.assert_allclose(abundance_matrix(table, ["FE", "MG"]),
                               raw["X_H"][:, [elements.index("FE"), elements.index("MG")]])
    assert table["APOGEE_ID"][0] == raw["APOGEE_ID"][0].strip()


def test_unknown_species_is_named(mock_apogee_dir):
    table = read_allstar(mock_apogee_dir / "allStar-mock.fits")
    with pytest.raises(SpecsiftInputError, match="XX"):
        abundance_matrix(table, ["FE", "XX"])


def test_dr12_named_columns_are_read(real_data):
    table = read_allstar(real_data / "occam" / "APOGEE-allStar-v603-Hipparcos.fits.gz")
    with fits.open(real_data / "occam" / "APOGEE-allStar-v603-Hipparcos.fits.gz") as hdul:
        mg = hdul[1].data["MG_H"]
    np.testing.assert_allclose(abundance_matrix(table, ["MG"])[:, 0], mg)


def test_occam_members_real_catalogue(real_data):
    table = read_occam(real_data / "occam" / "occam_member-DR16.fits")
    assert len(table) == 10063
    assert len(set(table["CLUSTER"])) == 126
    assert not any(c != c.strip() for c in table["CLUSTER"][:50])


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "occam.fits"
    fits.BinTableHDU.from_columns([fits.Column("CLUSTER", "10A", array=["A"])]).writeto(path)
    with pytest.raises(SpecsiftInputError, match="APOGEE_ID"):
        read_occam(path)
