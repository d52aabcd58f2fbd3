"""Parquet tables keep strings, masks, integer types and vector columns exactly."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from specsift.store.tables import TableStream, read_table, write_table


def test_round_trip_keeps_values_types_masks_and_shapes(tmp_path):
    table = Table({
        "ID": np.array([39627305500168284, 2, 3], dtype=np.int64),
        "SPECTYPE": np.array(["GALAXY", "STAR", ""]),
        "BYTES": np.array([b"a", b"bc", b""]),
        "COEFF": np.arange(12.0).reshape(3, 2, 2),
        "FLAG": np.array([True, False, True]),
        "BIGENDIAN": np.array([1.5, 2.5, 3.5], dtype=">f8"),
        "MZ": MaskedColumn([0.1, 0.2, 0.3], mask=[False, True, False]),
        "MI": MaskedColumn(np.array([1, 2, 3], dtype=np.int16), mask=[True, False, False]),
    })
    write_table(table, tmp_path / "t.parquet")
    back = read_table(tmp_path / "t.parquet")
    assert back.colnames == table.colnames
    assert back["ID"].dtype == np.int64 and back["ID"][0] == 39627305500168284
    assert back["SPECTYPE"].tolist() == ["GALAXY", "STAR", ""]
    assert back["BYTES"].tolist() == ["a", "bc", ""]
    np.testing.assert_array_equal(back["COEFF"], table["COEFF"])
    assert back["FLAG"].dtype == bool and back["FLAG"].tolist() == [True, False, True]
    assert back["BIGENDIAN"].tolist() == [1.5, 2.5, 3.5]
    assert back["MZ"].mask.tolist() == [False, True, False] and back["MZ"][2] == 0.3
    assert back["MI"].dtype == np.int16 and back["MI"].mask.tolist() == [True, False, False]
    assert read_table(tmp_path / "t.parquet", ["ID"]).colnames == ["ID"]


def test_text_objects_become_strings_and_other_objects_are_refused():
    import pytest

    from specsift.store.tables import column_to_arrow

    array, _ = column_to_arrow(np.array(["a  ", b"b"], dtype=object))
    assert array.to_pylist() == ["a", "b"]
    with pytest.raises(TypeError, match="BROKEN"):
        column_to_arrow(np.array([object(), 1], dtype=object), "BROKEN")


@pytest.mark.parametrize("suffix", [".parquet", ".fits"])
def test_a_table_stream_writes_every_batch_or_leaves_nothing(tmp_path, suffix):

    path = tmp_path / f"latents{suffix}"
    with TableStream(path) as out:
        for start in (0, 3):
            out.write(Table({"ID": np.arange(start, start + 3), "X": np.ones((3, 2))}))
    written = read_table(path) if suffix == ".parquet" else Table.read(path)
    assert written["ID"].tolist() == list(range(6)) and written["X"].shape == (6, 2)
    broken = tmp_path / f"broken{suffix}"
    with pytest.raises(RuntimeError), TableStream(broken) as out:
        out.write(Table({"ID": [1]}))
        raise RuntimeError("killed mid-way")
    with pytest.raises(ValueError, match="no rows"), TableStream(tmp_path / f"empty{suffix}"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
