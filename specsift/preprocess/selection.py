"""Sample selection as column cuts on the metadata table (BGS galaxies, MWS stars, anything).

A sample is a mapping ``column -> {operator: value}``; every object failing a cut is rejected
with the first cut it fails as its reason, so the rejects table says *why* an object is not in
the sample. Missing values (NaN, masked) fail every cut: an object without a DELTACHI2 cannot be
shown to pass a DELTACHI2 floor.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..errors import SpecsiftInputError

__all__ = ["OPERATORS", "apply_cuts"]

OPERATORS = {
    "eq": ("==", lambda x, v: x == v),
    "ne": ("!=", lambda x, v: x != v),
    "min": (">=", lambda x, v: x >= v),
    "max": ("<=", lambda x, v: x <= v),
    "gt": (">", lambda x, v: x > v),
    "lt": ("<", lambda x, v: x < v),
    "in": ("in", lambda x, v: np.isin(x, list(v))),
    "any_bits": ("has any bit of", lambda x, v: (x.astype(np.int64) & np.int64(v)) != 0),
}


def _values(table: Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, missing): strings stripped, masked or NaN entries flagged as missing."""
    col = table[column]
    missing = np.array(np.ma.getmaskarray(col), dtype=bool).reshape(len(table), -1).any(axis=1)
    values = np.asarray(np.ma.getdata(col))
    if values.dtype.kind == "S":
        values = np.char.decode(values, "ascii", "replace")
    if values.dtype.kind == "U":
        values = np.char.strip(values)
    elif values.dtype.kind == "f":
        missing |= ~np.isfinite(values)
    return values, missing


def apply_cuts(meta: Table, cuts: dict, path=None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``cuts`` on ``meta``.

    Arguments:
        meta: one row per object.
        cuts: ``{column: {operator: value}}`` with operators from :data:`OPERATORS`.
        path: the input file, named when a cut asks for a column the file does not have.

    Returns:
        ``(reason, detail)``: (N,) strings, ``''`` where the object passes every cut, else the
        first failed cut (``'selection: Z <= 0.8'``) and the offending value (``'Z = 1.2'``).
    """
    n = len(meta)
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)
    for column, ops in cuts.items():
        if not ops:
            continue
        if column not in meta.colnames:
            raise SpecsiftInputError(f"selection needs column {column!r}, which this file does "
                                     f"not have; use a sample without it (e.g. --sample all) or "
                                     f"change the cuts with --config", path)
        values, missing = _values(meta, column)
        for op, target in ops.items():
            if op not in OPERATORS:
                raise SpecsiftInputError(f"unknown cut operator {op!r} for {column}; use one of "
                                         f"{', '.join(OPERATORS)}")
            symbol, test = OPERATORS[op]
            with np.errstate(invalid="ignore"):
                fails = missing | ~np.asarray(test(values, target), dtype=bool)
            new = fails & (reason == "")
            shown = hex(target) if op == "any_bits" else target
            reason[new] = f"selection: {column} {symbol} {shown}"
            detail[new] = [f"{column} = {'missing' if m else v}"
                           for v, m in zip(values[new], missing[new])]
    return reason, detail
