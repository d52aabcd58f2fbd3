"""DESI coadd reader: b, r and z arms merged onto one grid, joined with Redrock by TARGETID.

A DESI ``coadd-*.fits`` file holds each spectrograph arm in its own HDUs (``B_FLUX``, ``B_IVAR``,
``B_MASK``, ``B_WAVELENGTH``, ...) on pieces of one global 0.8 A grid that overlap by a few
dozen pixels at the dichroic edges. Downstream models want one spectrum per object, so the arms
are placed on the 7781-pixel grid 3600-9824 A by pixel offset and combined by inverse-variance
weighting where they overlap. Redshifts live in a separate ``redrock-*.fits`` file written beside
the coadd; rows are joined by TARGETID, never by position.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
from astropy.table import Table, vstack

from ..errors import SpecsiftInputError
from ..runtime import progress
from ..spectra import Spectra
from .fitsutil import hdu_names, image, open_fits, table
from .grids import DESI_GRID, bad_pixels
from .paths import expand_paths
from .registry import READERS

__all__ = ["read", "iter_read", "read_redrock", "merge_arms", "BAD_MASK_BITS", "ARMS",
           "PATTERNS"]

logger = logging.getLogger("specsift.io.desi")

ARMS = ("B", "R", "Z")
PATTERNS = READERS["desi"].patterns  # a folder yields coadds only (see the registry)

# desispec specmask bits. SOMEBADPIX and COSMIC on a coadd pixel with ivar > 0 mean that some
# exposures were rejected there; the coadd ivar already counts only the good ones, so the pixel
# is usable. Every other bit (ALLBADPIX, BAD2DFIT, NODATA, BADFIBER, ...) marks a bad pixel.
SOMEBADPIX, COSMIC = 1 << 0, 1 << 2
BAD_MASK_BITS = ~(SOMEBADPIX | COSMIC)

REDROCK_HDUS = ("REDSHIFTS", "ZBEST")
REDROCK_PATTERNS = ("*redrock*.fits", "*zbest*.fits", "*redrock*.fits.gz", "*zbest*.fits.gz")
# Redrock columns copied into meta, with the value used where an object has no redshift.
# ZWARN = -1 sets every warning bit, so "no redshift" never passes a ZWARN == 0 cut.
REDROCK_COLUMNS = {"Z": np.nan, "ZERR": np.nan, "ZWARN": -1, "SPECTYPE": "", "SUBTYPE": "",
                   "DELTACHI2": np.nan}


def read(paths, **options) -> Spectra:
    """Read DESI coadd files (paths, folders or globs) into one :class:`~specsift.Spectra`.

    Arguments:
        paths: coadd files, folders (their ``*coadd*.fits``) or glob patterns.
        redrock: ``None`` (default) joins the ``redrock-*.fits`` beside each coadd when it exists;
            files, a folder (its ``*redrock*``/``*zbest*`` files) or a glob join those results
            to every coadd by TARGETID; ``False`` skips redshifts (``z`` is NaN).
        bad_bits: MASK bits that make a pixel bad (default :data:`BAD_MASK_BITS`).

    Example:
        >>> from specsift.datapaths import data_dir
        >>> s = read(data_dir() / "real/desi/coadd-4-80613-thru20210324.fits")
        >>> s.wave.size, str(s.meta["SPECTYPE"][0]), round(float(s.z[0]), 3)
        (7781, 'GALAXY', 0.369)
    """
    return Spectra.concatenate(list(iter_read(paths, **options)))


def iter_read(paths, redrock=None, bad_bits: int = BAD_MASK_BITS) -> Iterator[Spectra]:
    """Yield one :class:`~specsift.Spectra` per coadd file, so a survey streams file by file."""
    files = expand_paths(paths, patterns=PATTERNS)
    shared = None if redrock is None or redrock is False else read_redrock(redrock)
    for path in progress(files, desc="DESI coadds", unit="file"):
        if redrock is None:
            sibling = _sibling_redrock(path)
            redshifts = read_redrock(sibling) if sibling is not None else None
        else:
            redshifts = shared
        yield _read_coadd(path, redshifts, bad_bits)


def read_redrock(paths) -> Table:
    """Redrock results (``REDSHIFTS`` or old ``ZBEST`` HDU) as a Table with unique TARGETIDs."""
    parts = []
    for path in expand_paths(paths, patterns=REDROCK_PATTERNS):
        with open_fits(path) as hdul:
            names = hdu_names(hdul)
            hdu = next((h for h in REDROCK_HDUS if h in names), REDROCK_HDUS[0])
            parts.append(table(hdul, hdu, path, columns=["TARGETID", *REDROCK_COLUMNS]))
            if "TARGETID" not in parts[-1].colnames:
                raise SpecsiftInputError(f"HDU {hdu} has no TARGETID column", path)
    result = vstack(parts) if len(parts) > 1 else parts[0]
    ids, counts = np.unique(result["TARGETID"], return_counts=True)
    if np.any(counts > 1):
        raise SpecsiftInputError(
            f"TARGETID {ids[counts > 1][0]} appears {counts.max()} times in the Redrock results, "
            f"so redshifts cannot be joined; pass one redrock file per coadd", paths)
    return result


def _sibling_redrock(path: Path) -> Path | None:
    """The Redrock file the DESI pipeline writes beside ``coadd-X.fits`` (or old ``zbest-X``)."""
    if "coadd" not in path.name:
        return None
    for prefix in ("redrock", "zbest"):
        candidate = path.with_name(path.name.replace("coadd", prefix, 1))
        if candidate.exists():
            return candidate
    logger.info("%s: no redrock file beside it; redshifts are unknown (NaN)", path)
    return None


def _check_is_coadd(names: set[str], hdul, path: Path) -> None:
    """Refuse files that are DESI products but not coadds (or coadds cut short), saying which."""
    found = ", ".join(h.name for h in hdul)
    if not any(f"{arm}_FLUX" in names for arm in ARMS):
        if names & set(REDROCK_HDUS):
            raise SpecsiftInputError("this is a Redrock redshift file and holds no spectra; pass "
                                     "the coadd file (its redrock file is joined automatically)",
                                     path)
        raise SpecsiftInputError(f"missing HDUs B_FLUX/R_FLUX/Z_FLUX: not a DESI coadd "
                                 f"(file has: {found})", path)
    # a file cut at an HDU boundary loses whole arms without any other sign of truncation
    missing = [f"{arm}_{part}" for arm in ARMS for part in ("WAVELENGTH", "FLUX", "IVAR")
               if f"{arm}_{part}" not in names]
    if missing:
        raise SpecsiftInputError(f"missing HDU {', '.join(missing)} (file has: {found})", path)
    if "FIBERMAP" in names:
        columns = hdul["FIBERMAP"].columns.names
        if "EXPID" in columns and "COADD_FIBERSTATUS" not in columns:
            raise SpecsiftInputError("this is a per-exposure spectra file (FIBERMAP has EXPID); "
                                     "read the coadd of these exposures instead", path)


def _read_arm(hdul, arm: str, path: Path, bad_bits: int):
    """(grid offset, flux, ivar, bad) of one arm, checked for shape and grid."""
    wave = image(hdul, f"{arm}_WAVELENGTH", path)
    offset = DESI_GRID.offset(wave, path, what=f"{arm}_WAVELENGTH")
    flux = image(hdul, f"{arm}_FLUX", path, np.float32)
    ivar = image(hdul, f"{arm}_IVAR", path, np.float32)
    shape = (flux.shape[0] if flux.ndim == 2 else -1, wave.size)
    for name, array in ((f"{arm}_FLUX", flux), (f"{arm}_IVAR", ivar)):
        if array.shape != shape:
            raise SpecsiftInputError(f"HDU {name} has shape {array.shape}, expected "
                                     f"(n_spectra, {wave.size}) to match {arm}_WAVELENGTH", path)
    mask = None
    if f"{arm}_MASK" in hdu_names(hdul):
        mask = image(hdul, f"{arm}_MASK", path)
        if mask.shape != shape:
            raise SpecsiftInputError(f"HDU {arm}_MASK has shape {mask.shape}, expected {shape}",
                                     path)
    return offset, flux, ivar, bad_pixels(flux, ivar, mask, bad_bits)


def merge_arms(arms: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], n: int, path=None):
    """Put arms ``(offset, flux, ivar, bad)`` on :data:`DESI_GRID`; returns ``flux, ivar, mask``.

    Where arms overlap, good pixels are combined by inverse-variance weighting,
    ``f = sum(w_i f_i) / sum(w_i)`` and ``ivar = sum(w_i)`` with ``w_i = ivar_i`` on good pixels
    and 0 on bad ones. A pixel bad in every arm keeps the plain mean flux, ivar 0 and is masked.
    Grid pixels no arm covers get flux 0, ivar 0, masked.
    """
    size = DESI_GRID.size
    flux = np.zeros((n, size), np.float32)
    ivar = np.zeros((n, size), np.float32)
    mask = np.ones((n, size), bool)
    cover = np.zeros(size, np.int64)
    placed = []
    for offset, f, iv, bad in arms:
        dst, src = DESI_GRID.place(offset, f.shape[1], path)
        flux[:, dst], ivar[:, dst], mask[:, dst] = f[:, src], iv[:, src], bad[:, src]
        cover[dst] += 1
        placed.append((dst, src, f, iv, bad))
    shared = np.flatnonzero(cover > 1)
    if shared.size:
        num = np.zeros((n, shared.size))
        den = np.zeros((n, shared.size))
        total = np.zeros((n, shared.size))
        for dst, src, f, iv, bad in placed:
            inside = (shared >= dst.start) & (shared < dst.stop)
            cols = shared[inside] - dst.start + src.start
            fa, bada = f[:, cols].astype(np.float64), bad[:, cols]
            weight = np.where(bada, 0.0, iv[:, cols])
            num[:, inside] += weight * np.where(bada, 0.0, fa)
            den[:, inside] += weight
            total[:, inside] += fa
        good = den > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            flux[:, shared] = np.where(good, num / np.where(good, den, 1.0),
                                       total / cover[shared])
        ivar[:, shared] = den
        mask[:, shared] = ~good
    return flux, ivar, mask


def _join_redshifts(targetid: np.ndarray, redshifts: Table | None, path: Path) -> Table:
    """Redrock columns for each TARGETID (fill values where the object has no redshift)."""
    n = len(targetid)
    index = np.full(n, -1)
    if redshifts is not None and len(redshifts):
        ids = np.asarray(redshifts["TARGETID"], dtype=np.int64)
        order = np.argsort(ids)
        pos = np.minimum(np.searchsorted(ids[order], targetid), len(ids) - 1)
        index = np.where(ids[order][pos] == targetid, order[pos], -1)
    missing = int(np.sum(index < 0))
    if redshifts is not None and missing:
        logger.warning("%s: %d of %d objects have no Redrock redshift (z set to NaN)",
                       path, missing, n)
    hit = index >= 0
    out = Table()
    for name, fill in REDROCK_COLUMNS.items():
        template = np.array([fill])
        present = redshifts is not None and name in redshifts.colnames
        source = np.asarray(redshifts[name]) if present else template
        column = np.full(n, fill, dtype=np.promote_types(source.dtype, template.dtype))
        if present:
            column[hit] = source[index[hit]]
        out[name] = column
    return out


def _read_coadd(path: Path, redshifts: Table | None, bad_bits: int) -> Spectra:
    """One coadd file as a Spectra with FILENAME/ROW/IS_TARGET, FIBERMAP and Redrock meta."""
    with open_fits(path) as hdul:
        names = hdu_names(hdul)
        _check_is_coadd(names, hdul, path)
        arms = [_read_arm(hdul, arm, path, bad_bits) for arm in ARMS]
        counts = {arm: a[1].shape[0] for arm, a in zip(ARMS, arms)}
        if len(set(counts.values())) > 1:
            raise SpecsiftInputError(f"arms hold different numbers of spectra {counts}", path)
        n = counts["B"]
        fibermap = table(hdul, "FIBERMAP", path) if "FIBERMAP" in names else None
        flux, ivar, mask = merge_arms(arms, n, path)

    meta = Table({"FILENAME": np.full(n, str(path)), "ROW": np.arange(n, dtype=np.int64)})
    if fibermap is None:
        logger.warning("%s: no FIBERMAP; TARGETID set to the row number, redshifts not joined",
                       path)
        meta["TARGETID"] = np.arange(n, dtype=np.int64)
        redshifts = None
    else:
        if len(fibermap) != n or "TARGETID" not in fibermap.colnames:
            raise SpecsiftInputError(f"FIBERMAP has {len(fibermap)} rows for {n} spectra or no "
                                     f"TARGETID column", path)
        for name in fibermap.colnames:
            if name not in meta.colnames:
                meta[name] = fibermap[name]
    targetid = np.asarray(meta["TARGETID"], dtype=np.int64)
    objtype = np.asarray(meta["OBJTYPE"]) if "OBJTYPE" in meta.colnames else np.full(n, "TGT")
    # sky fibres have OBJTYPE SKY; unassigned/empty fibres have a negative TARGETID and no OBJTYPE
    meta["IS_TARGET"] = (targetid >= 0) & (objtype == "TGT")
    for name, column in _join_redshifts(targetid, redshifts, path).columns.items():
        meta[name] = column
    z = np.asarray(meta["Z"], dtype=np.float64)
    return Spectra(DESI_GRID.wave, flux, ivar, mask, z, targetid, meta, "desi")
