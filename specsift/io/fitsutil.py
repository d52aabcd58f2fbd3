"""Open survey FITS files so that truncation, corruption and missing HDUs name the file and HDU.

astropy opens a FITS file lazily: a truncated file often opens fine and only fails (or, worse,
returns a short array) when an HDU's data are touched. Every reader goes through these helpers,
so such files always become a one-line :class:`~specsift.SpecsiftInputError` instead of a
traceback from deep inside astropy.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import SpecsiftInputError

__all__ = ["open_fits", "hdu_names", "image", "table", "header", "strip_strings"]


@contextmanager
def open_fits(path: str | Path):
    """Open ``path`` read-only; a file astropy cannot parse raises SpecsiftInputError."""
    try:
        with warnings.catch_warnings():
            # astropy warns (not raises) on truncation; we detect it when the data are read
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            warnings.simplefilter("ignore", UserWarning)
            hdul = fits.open(path, memmap=False, mode="readonly", lazy_load_hdus=False)
    except FileNotFoundError:
        raise SpecsiftInputError("no such file", path) from None
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise SpecsiftInputError(f"not a readable FITS file (truncated or corrupt?): {exc}",
                                 path) from None
    try:
        _check_complete(hdul, path)
        yield hdul
    finally:
        hdul.close()


def _check_complete(hdul: fits.HDUList, path) -> None:
    """Refuse a file shorter than its headers promise (astropy would only warn, or pad)."""
    size = os.path.getsize(path)
    for i, hdu in enumerate(hdul):
        info = hdul.fileinfo(i)
        if info is None or getattr(info["file"], "compression", None):
            continue  # compressed streams fail on read instead, caught in _data
        end = info["datLoc"] + info["datSpan"]
        if end > size:
            raise SpecsiftInputError(f"file is truncated: HDU {hdu.name or i} needs {end} bytes, "
                                     f"the file has {size}", path)


def hdu_names(hdul: fits.HDUList) -> set[str]:
    """Upper-case extension names present in the file."""
    return {hdu.name.upper() for hdu in hdul}


def _hdu(hdul: fits.HDUList, key, path):
    try:
        return hdul[key]
    except (KeyError, IndexError):
        found = ", ".join(h.name or str(i) for i, h in enumerate(hdul))
        raise SpecsiftInputError(f"missing HDU {key} (file has: {found})", path) from None


def _data(hdul: fits.HDUList, key, path):
    hdu = _hdu(hdul, key, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            data = hdu.data
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise SpecsiftInputError(f"HDU {key} is truncated or corrupt: {exc}", path) from None
    if data is None:
        raise SpecsiftInputError(f"HDU {key} holds no data", path)
    return data


def image(hdul: fits.HDUList, key, path, dtype=None) -> np.ndarray:
    """Image HDU ``key`` as a native-endian array (``dtype`` if given); errors name file and HDU."""
    data = _data(hdul, key, path)
    try:
        return np.asarray(data, dtype=dtype or data.dtype.newbyteorder("="))
    except (OSError, ValueError) as exc:  # a memmap shorter than the header promises
        raise SpecsiftInputError(f"HDU {key} is truncated or corrupt: {exc}", path) from None


def table(hdul: fits.HDUList, key, path, columns=None) -> Table:
    """Binary-table HDU ``key`` as a Table (only those of ``columns`` present), strings stripped."""
    data = _data(hdul, key, path)
    try:
        # FITS column names are case-insensitive (SDSS writes 'flux', 'loglam', ...)
        present = {name.upper(): name for name in data.columns.names}
        wanted = data.columns.names if columns is None else columns
        out = Table({name: np.asarray(data[present[name.upper()]]) for name in wanted
                     if name.upper() in present})
    except (OSError, ValueError, IndexError) as exc:
        raise SpecsiftInputError(f"HDU {key} is truncated or corrupt: {exc}", path) from None
    return strip_strings(out)


def header(hdul: fits.HDUList, key, path) -> fits.Header:
    """Header of HDU ``key``; a missing HDU names the file."""
    return _hdu(hdul, key, path).header


def strip_strings(tab: Table) -> Table:
    """Decode bytes and strip padding from every text column (FITS pads with blanks)."""
    for name in tab.colnames:
        kind = tab[name].dtype.kind
        if kind in "SU":
            values = np.asarray(tab[name])
            if kind == "S":
                values = np.char.decode(values, "ascii", errors="replace")
            tab[name] = np.char.strip(values)
    return tab
