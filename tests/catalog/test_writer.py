"""Catalogue files: same content and metadata in parquet and FITS, atomic, resumable parts."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from specsift.catalog.writer import CatalogParts, catalog_format, read_catalog, write_catalog

METADATA = {"STARRULE": "chi2", "STARTHR": 0.5,
            "STORE": "/a/very/long/path/" + "x" * 120 + "/store"}


def _table():
    return Table({"TARGETID": np.array([39627, 39628, 39629], dtype=np.int64),
                  "Z": [0.1, 0.2, np.nan], "IS_STAR": [True, False, False],
                  "SPECTYPE": ["GALAXY", "STAR", "QSO"],
                  "COEFF": np.arange(6, dtype=np.float32).reshape(3, 2)})


@pytest.mark.parametrize("name", ["cat.parquet", "cat.fits"])
def test_catalog_round_trips_columns_and_metadata(tmp_path, name):
    path = write_catalog(_table(), tmp_path / name, METADATA)
    table, metadata = read_catalog(path)
    assert metadata == METADATA
    assert table["TARGETID"].tolist() == [39627, 39628, 39629]
    assert table["SPECTYPE"].tolist() == ["GALAXY", "STAR", "QSO"]
    assert table["IS_STAR"].tolist() == [True, False, False]
    np.testing.assert_array_equal(table["COEFF"], _table()["COEFF"])
    assert np.isnan(table["Z"][2])


def test_format_follows_the_file_name():
    assert catalog_format("x.fits") == "fits" and catalog_format("x.FITS.gz") == "fits"
    assert catalog_format("x.parquet") == "parquet" and catalog_format("x.cat") == "parquet"


def test_failed_write_leaves_no_catalog_behind(tmp_path):
    out = tmp_path / "cat.parquet"
    bad = _table()
    bad["BROKEN"] = np.array([object(), object(), object()], dtype=object)
    with pytest.raises(Exception):
        write_catalog(bad, out, METADATA)
    assert list(tmp_path.iterdir()) == []


def test_parts_are_kept_for_the_same_inputs_and_discarded_for_others(tmp_path):
    out = tmp_path / "cat.parquet"
    parts = CatalogParts(out, {"store": "a", "n": 10}).prepare()
    parts.write(0, {"STORE_ROW": np.arange(5)})
    parts.write(1, {"STORE_ROW": np.arange(5, 10)})
    assert CatalogParts(out, {"store": "a", "n": 10}).prepare().done() == {0, 1}
    read = CatalogParts(out, {"store": "a", "n": 10}).read(2)
    assert read["STORE_ROW"].tolist() == list(range(10))
    with pytest.raises(RuntimeError, match="not scored"):
        parts.read(3)
    assert CatalogParts(out, {"store": "b", "n": 10}).prepare().done() == set()


def test_parquet_catalog_uses_the_store_conversion(tmp_path):
    """One converter: masks, vector shapes and FITS-padded text survive a catalogue as they
    survive a store table."""
    import pyarrow.parquet as pq
    from astropy.table import MaskedColumn

    from specsift.store.tables import table_to_arrow

    table = _table()
    table["CUBE"] = np.arange(12.0).reshape(3, 2, 2)
    table["MZ"] = MaskedColumn([0.1, 0.2, 0.3], mask=[False, True, False])
    table["PADDED"] = np.array([b"STAR  ", b"GALAXY", b"QSO   "])
    path = write_catalog(table, tmp_path / "cat.parquet", METADATA)
    assert pq.read_table(path).schema.remove_metadata() == table_to_arrow(table).schema
    back, _ = read_catalog(path)
    np.testing.assert_array_equal(back["CUBE"], table["CUBE"])
    assert back["MZ"].mask.tolist() == [False, True, False]
    assert back["PADDED"].tolist() == ["STAR", "GALAXY", "QSO"]
