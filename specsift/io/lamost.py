"""LAMOST low-resolution spectrum reader (DR1-style ``spec-LMJD-PLANID_spSS-FFF.fits``).

A LAMOST file holds one object as a (5, P) primary image: flux, inverse variance, a third row
(the wavelength in later releases, the sub-continuum in DR1 v2.6), and-mask and or-mask. The
wavelength grid comes from the header (log10 lambda = COEFF0 + COEFF1 i), which every release
writes; it is in vacuum (``VACUUM = T``) and heliocentric (``HELIO = T``). Files are placed on
:data:`~specsift.io.grids.LAMOST_GRID` (1e-4 dex) by pixel offset; class, subclass, redshift and
S/N come from the header.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SpecsiftInputError
from ..spectra import Spectra
from .fitsutil import header, image, open_fits
from .grids import LAMOST_GRID, bad_pixels
from .perobject import FILES_PER_CHUNK, iter_files, require_vacuum

__all__ = ["read", "iter_read"]

FLUX, IVAR, AND_MASK = 0, 1, 3
# header keywords copied into meta, with the value used when a file lacks one
HEADER_META = {"OBSID": -1, "DESIG": "", "OBJNAME": "", "RA": np.nan, "DEC": np.nan,
               "LMJD": -1, "MJD": -1, "PLANID": "", "SPID": -1, "FIBERID": -1, "FIBERTYP": "",
               "OBJTYPE": "", "CLASS": "", "SUBCLASS": "", "Z": np.nan, "Z_ERR": np.nan,
               "SN_U": np.nan, "SN_G": np.nan, "SN_R": np.nan, "SN_I": np.nan, "SN_Z": np.nan,
               "HELIO_RV": np.nan, "EXPTIME": np.nan}
# fibres that carry no astronomical target
NOT_TARGETS = {"SKY", "UNUSED", "DEAD", "POSERR"}


def read(paths, **options) -> Spectra:
    """Read LAMOST spectra (paths, folders or globs) into one :class:`~specsift.Spectra`.

    Arguments:
        paths: LAMOST ``spec-*.fits`` files, folders (every ``*.fits``) or glob patterns.
        bad_bits: and-mask bits that make a pixel bad (default: every bit).

    Example:
        >>> from specsift.datapaths import data_dir
        >>> s = read(data_dir() / "real/lamost/spec-55862-B6212_sp06-003.fits")
        >>> str(s.ids[0]), str(s.meta["CLASS"][0])
        ('55862-B6212_sp06-003', 'STAR')
    """
    return Spectra.concatenate(list(iter_read(paths, **options)))


def iter_read(paths, bad_bits: int = ~0, files_per_chunk: int = FILES_PER_CHUNK
              ) -> Iterator[Spectra]:
    """Yield :class:`~specsift.Spectra` of up to ``files_per_chunk`` files each (bounded memory)."""
    return iter_files(paths, partial(_read_spec, bad_bits=bad_bits), LAMOST_GRID, "lamost",
                      files_per_chunk)


def _read_spec(path: Path, bad_bits: int):
    """((offset, flux, ivar, bad), meta dict) of one LAMOST file."""
    with open_fits(path) as hdul:
        head = header(hdul, 0, path)
        data = image(hdul, 0, path)
    require_vacuum(head, path, "LAMOST")
    if data.ndim != 2 or data.shape[0] < 4:
        raise SpecsiftInputError(f"primary HDU has shape {data.shape}, expected (5, n_pixels) "
                                 f"rows flux, invvar, wavelength, andmask, ormask", path)
    missing = [key for key in ("COEFF0", "COEFF1") if key not in head]
    if missing:
        raise SpecsiftInputError(f"primary header has no {' or '.join(missing)} keyword (the "
                                 f"log10-lambda grid is COEFF0 + COEFF1 * pixel)", path)
    start, step = float(head["COEFF0"]), float(head["COEFF1"])
    wave = 10.0 ** (start + step * np.arange(data.shape[1]))
    offset = LAMOST_GRID.offset(wave, path, what="COEFF0/COEFF1 wavelength grid")
    flux = data[FLUX].astype(np.float32)
    ivar = data[IVAR].astype(np.float32)
    info = {name: head.get(name, fill) for name, fill in HEADER_META.items()}
    info = {name: value.strip() if isinstance(value, str) else value
            for name, value in info.items()}
    meta = {"ID": f"{info['LMJD']}-{info['PLANID']}_sp{info['SPID']:02d}-{info['FIBERID']:03d}",
            "FILENAME": str(path), "ROW": 0,
            "IS_TARGET": str(info["FIBERTYP"]).upper() not in NOT_TARGETS, **info,
            # survey-independent aliases, so later steps need not know LAMOST keywords
            "SPECTYPE": info["CLASS"], "ZERR": info["Z_ERR"]}
    return (offset, flux, ivar, bad_pixels(flux, ivar, data[AND_MASK], bad_bits)), meta
