"""SDSS/BOSS ``spec-PLATE-MJD-FIBER.fits`` reader: one spectrum per file, many files per grid.

Each file holds one object: HDU 1 the coadded spectrum (``loglam``, ``flux``, ``ivar``,
``and_mask``), HDU 2 the pipeline's redshift and class (``SPECOBJ`` or ``SPALL``). Files start
at different wavelengths but all sit on the 1e-4 dex log10-lambda grid, so each is placed on
:data:`~specsift.io.grids.SDSS_GRID` by its pixel offset, without resampling. SDSS loglam is
already in vacuum (primary header ``VACUUM = T``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SpecsiftInputError
from ..spectra import Spectra
from .fitsutil import header, hdu_names, open_fits, table
from .grids import SDSS_GRID, bad_pixels
from .perobject import FILES_PER_CHUNK, iter_files, require_vacuum

__all__ = ["read", "iter_read", "BAD_AND_MASK_BITS"]

# SPPIXMASK and_mask bits that make a pixel unusable: NOPLUG, BADTRACE, FULLREJECT, NOSKY,
# BRIGHTSKY, NODATA, COMBINEREJ, BADSKYCHI, REDMONSTER. Fibre-level warnings (BADFLAT, LOWFLAT,
# NEARBADPIXEL, PARTIALREJECT, SCATTEREDLIGHT, ...) are not: the ivar already carries them, and
# BADFLAT alone would mask whole good spectra (two of the 21 real test files).
BAD_AND_MASK_BITS = sum(1 << bit for bit in (0, 1, 18, 22, 23, 24, 25, 27, 28))
# HDU 2 columns copied into meta (those a file has); the rest of SPALL is survey bookkeeping.
META_COLUMNS = ("PLATE", "MJD", "FIBERID", "SPECOBJID", "CLASS", "SUBCLASS", "Z", "Z_ERR",
                "ZWARNING", "SN_MEDIAN_ALL", "PLUG_RA", "PLUG_DEC", "OBJTYPE", "TARGETTYPE")
NOT_TARGETS = {"SKY", "NA"}
SPECOBJ_HDUS = ("SPECOBJ", "SPALL")  # DR8-DR16 spec-lite name, and the BOSS/eBOSS one


def read(paths, **options) -> Spectra:
    """Read SDSS/BOSS spec files (paths, folders or globs) into one :class:`~specsift.Spectra`.

    Arguments:
        paths: ``spec-*.fits`` files, folders (every ``*.fits``) or glob patterns.
        bad_bits: ``and_mask`` bits that make a pixel bad (default :data:`BAD_AND_MASK_BITS`).

    Example:
        >>> from specsift.datapaths import data_dir
        >>> s = read(data_dir() / "real/sdss/spec-4055-55359-0006.fits")
        >>> str(s.ids[0]), str(s.meta["CLASS"][0]), round(float(s.z[0]), 3)
        ('4055-55359-0006', 'GALAXY', 0.214)
    """
    return Spectra.concatenate(list(iter_read(paths, **options)))


def iter_read(paths, bad_bits: int = BAD_AND_MASK_BITS,
              files_per_chunk: int = FILES_PER_CHUNK) -> Iterator[Spectra]:
    """Yield :class:`~specsift.Spectra` of up to ``files_per_chunk`` files each (bounded memory)."""
    return iter_files(paths, partial(_read_spec, bad_bits=bad_bits), SDSS_GRID, "sdss",
                      files_per_chunk)


def _read_spec(path: Path, bad_bits: int):
    """((offset, flux, ivar, bad), meta dict) of one spec file."""
    with open_fits(path) as hdul:
        head = header(hdul, 0, path)
        require_vacuum(head, path, "SDSS")
        coadd = table(hdul, 1, path, columns=["loglam", "flux", "ivar", "and_mask"])
        for name in ("loglam", "flux", "ivar"):
            if name not in coadd.colnames:
                raise SpecsiftInputError(f"HDU 1 has no {name} column (not an SDSS spec file?)",
                                         path)
        names = hdu_names(hdul)
        hdu = next((name for name in SPECOBJ_HDUS if name in names), None)
        if hdu is None:
            found = ", ".join(h.name or str(i) for i, h in enumerate(hdul))
            raise SpecsiftInputError(f"missing HDU SPECOBJ (or SPALL), which holds the class and "
                                     f"redshift (file has: {found})", path)
        specobj = table(hdul, hdu, path, columns=META_COLUMNS)
    if len(specobj) != 1:
        raise SpecsiftInputError(f"HDU {hdu} has {len(specobj)} rows, expected 1 (one object "
                                 f"per spec file)", path)
    flux = np.asarray(coadd["flux"], np.float32)
    ivar = np.asarray(coadd["ivar"], np.float32)
    and_mask = np.asarray(coadd["and_mask"]) if "and_mask" in coadd.colnames else None
    offset = SDSS_GRID.offset(10.0 ** np.asarray(coadd["loglam"], np.float64), path,
                              what="HDU 1 loglam", tol=0.05)
    info = {name: specobj[name][0] for name in specobj.colnames}
    plate = int(info.get("PLATE", head.get("PLATEID", -1)))
    mjd = int(info.get("MJD", head.get("MJD", -1)))
    fiber = int(info.get("FIBERID", head.get("FIBERID", -1)))
    kinds = {str(info.get(name, "")).upper() for name in ("OBJTYPE", "TARGETTYPE")}
    meta = {"ID": f"{plate:04d}-{mjd:05d}-{fiber:04d}", "FILENAME": str(path), "ROW": 0,
            "IS_TARGET": not (kinds & NOT_TARGETS),
            "PLATE": plate, "MJD": mjd, "FIBERID": fiber,
            "SPECOBJID": str(info.get("SPECOBJID", "")).strip(),
            "CLASS": str(info.get("CLASS", "")), "SUBCLASS": str(info.get("SUBCLASS", "")),
            "Z": float(info.get("Z", np.nan)), "Z_ERR": float(info.get("Z_ERR", np.nan)),
            "ZWARNING": int(info.get("ZWARNING", -1)),
            "SN_MEDIAN_ALL": float(info.get("SN_MEDIAN_ALL", np.nan)),
            "PLUG_RA": float(info.get("PLUG_RA", head.get("PLUG_RA", np.nan))),
            "PLUG_DEC": float(info.get("PLUG_DEC", head.get("PLUG_DEC", np.nan)))}
    # survey-independent aliases, so later steps need not know SDSS column names
    meta.update(SPECTYPE=meta["CLASS"], ZERR=meta["Z_ERR"], ZWARN=meta["ZWARNING"])
    return (offset, flux, ivar, bad_pixels(flux, ivar, and_mask, bad_bits)), meta
