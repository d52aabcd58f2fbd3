"""Astropy tables to and from Parquet, without pandas, keeping masks and multi-dimensional columns.

Metadata tables hold strings, booleans, masked values and vector columns (e.g. Redrock COEFF).
Parquet keeps all of these (nulls, fixed-size lists) compactly and is read by any Arrow tool, so
a store's catalogue can be opened outside specsift too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import MaskedColumn, Table

from contextlib import ExitStack

from ..atomic import atomic_path

__all__ = ["column_to_arrow", "table_to_arrow", "arrow_to_table", "write_table", "read_table",
           "TableStream"]

_SHAPE_KEY = b"specsift_shape"


def column_to_arrow(column, name: str = "column") -> tuple[pa.Array, dict]:
    """One astropy/numpy column as an Arrow array and the field metadata that restores it.

    The package's one conversion (the store's tables and the catalogues use it): bytes become
    UTF-8 text with FITS's trailing blanks dropped, big-endian numbers native ones, masked
    entries nulls, and a vector column (N, ...) a fixed-size list whose shape is kept in the
    field metadata. A column of other Python objects raises TypeError naming ``name``.

    Example:
        >>> array, metadata = column_to_arrow(np.array([b"STAR  ", b"GALAXY"]))
        >>> array.to_pylist(), metadata
        (['STAR', 'GALAXY'], {})
    """
    data = np.asarray(np.ma.getdata(column))
    mask = np.ma.getmaskarray(column) if np.ma.is_masked(column) else None
    if data.dtype.kind == "O":
        if not all(isinstance(v, (str, bytes)) for v in data.reshape(-1)):
            raise TypeError(f"column {name} holds Python objects, not numbers or text")
        data = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in data.reshape(-1)], dtype=str).reshape(data.shape)
    if data.dtype.kind == "S":
        data = np.char.decode(data, "utf-8", "replace")
    if data.dtype.kind == "U":
        data = np.char.rstrip(data)
    if not data.dtype.isnative:  # FITS columns are big-endian; Arrow wants native order
        data = data.astype(data.dtype.newbyteorder("="))
    shape = data.shape[1:]
    if mask is not None and shape:
        mask = mask.reshape(len(data), -1).any(axis=1)
    if not shape:
        return pa.array(data, mask=mask), {}
    flat = pa.array(data.reshape(-1))
    array = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(shape)),
                                              mask=None if mask is None else pa.array(mask))
    return array, {_SHAPE_KEY: json.dumps(list(shape)).encode()}


def table_to_arrow(table: Table) -> pa.Table:
    """An Arrow table with one field per column; vector columns become fixed-size lists."""
    fields, arrays = [], []
    for name in table.colnames:
        array, metadata = column_to_arrow(table[name], name)
        fields.append(pa.field(name, array.type, metadata=metadata or None))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def arrow_to_table(arrow: pa.Table) -> Table:
    """Inverse of :func:`table_to_arrow`: nulls become masked entries."""
    out = Table()
    for field, chunked in zip(arrow.schema, arrow.columns):
        array = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        n = len(array)
        nulls = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
        if pa.types.is_fixed_size_list(field.type):
            shape = tuple(json.loads(field.metadata[_SHAPE_KEY])) if field.metadata else (
                field.type.list_size,)
            # flatten() drops null lists; slice the child values to keep one row per entry
            size = field.type.list_size
            values = array.values.slice(array.offset * size, n * size).to_numpy(
                zero_copy_only=False)
            values = values.reshape((n,) + shape)
        elif nulls is not None and (pa.types.is_integer(field.type)
                                    or pa.types.is_boolean(field.type)):
            values = array.fill_null(False if pa.types.is_boolean(field.type) else 0).to_numpy(
                zero_copy_only=False)  # keep the integer dtype; the mask says what is missing
        else:
            values = array.to_numpy(zero_copy_only=False)
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            values = np.asarray(["" if v is None else v for v in values], dtype=str)
        if nulls is not None:
            full = np.broadcast_to(nulls.reshape((n,) + (1,) * (values.ndim - 1)), values.shape)
            out[field.name] = MaskedColumn(values, mask=full)
        else:
            out[field.name] = values
    return out


def write_table(table: Table, path: str | Path) -> None:
    """Write ``table`` to Parquet atomically (a killed run leaves no half file)."""
    with atomic_path(path) as tmp:
        pq.write_table(table_to_arrow(table), tmp, compression="zstd")


def read_table(path: str | Path, columns: list[str] | None = None) -> Table:
    """Read a table written by :func:`write_table` (optionally only some columns)."""
    return arrow_to_table(pq.read_table(path, columns=columns))


class TableStream:
    """Write a table batch by batch, as Parquet (``.parquet``) or FITS (``.fits``), atomically.

    Parquet batches go to disk as row groups as they come, so a per-object table of a whole
    survey never sits in memory; FITS cannot be appended row-wise, so its batches are kept and
    written at the end. Nothing is left at ``path`` unless the ``with`` block completes.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> with TableStream(path) as out:
        ...     out.write(Table({"A": [1, 2]})); out.write(Table({"A": [3]}))
        >>> read_table(path)["A"].tolist(), out.n_rows
        ([1, 2, 3], 3)
    """

    FORMATS = (".parquet", ".fits")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in self.FORMATS:
            raise ValueError(f"{self.path}: output must end in .parquet or .fits")
        self.n_rows = 0
        self._parts: list[Table] = []
        self._writer = None

    def __enter__(self) -> "TableStream":
        self._stack = ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def write(self, table: Table) -> None:
        if self.format == ".parquet":
            arrow = table_to_arrow(table)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tmp, arrow.schema, compression="zstd")
            self._writer.write_table(arrow)
        else:
            self._parts.append(table)
        self.n_rows += len(table)

    def __exit__(self, kind, error, trace):
        try:
            if self._writer is not None:
                self._writer.close()
            if error is None and not self.n_rows:
                raise ValueError(f"{self.path}: no rows to write")
            if error is None and self._parts:
                from astropy.table import vstack

                vstack(self._parts).write(self._tmp, format="fits", overwrite=True)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())      # the temporary file goes
            raise
        return self._stack.__exit__(kind, error, trace)
