"""From spectra as read to spectra ready for a store: checks, cuts, masks, normalisation, split.

:func:`preprocess` runs the steps in a fixed order on one batch of spectra (one input file) and
accounts for every object: each ends up either in ``Prepared.meta`` (with its normalised arrays)
or in ``Prepared.rejects`` with a reason. The first problem found is the reason reported, in the
order: bad data (:mod:`.quality`), sample cuts (:mod:`.selection`), Milky-Way extinction
(:mod:`.extinction`), normalisation (:mod:`.normalize`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from ..spectra import Spectra
from .config import PreprocessConfig, default_config, load_config
from .extinction import deredden
from .masks import bad_pixels, sky_line_mask
from .normalize import normalize, window_median
from .quality import check_quality
from .selection import apply_cuts
from .split import assign_split

logger = logging.getLogger("specsift.preprocess")

__all__ = ["Prepared", "preprocess", "PreprocessConfig", "default_config", "load_config",
           "rejects_table"]


@dataclass
class Prepared:
    """The outcome of :func:`preprocess` for one batch of spectra.

    Arguments:
        flux: (M, P) float32 normalised flux, 0 on masked pixels.
        ivar: (M, P) float32 normalised inverse variance, exactly 0 on masked pixels.
        meta: M rows: the input metadata plus ID, Z, SPLIT, NORM, SNR, MASKED_FRACTION, SAMPLE.
        rejects: one row per rejected object: FILENAME, ROW, ID, REASON, DETAIL.
    """

    flux: np.ndarray
    ivar: np.ndarray
    meta: Table
    rejects: Table


def rejects_table(filename, row, ids, reason, detail) -> Table:
    """The rejects table layout shared by preprocessing and ingest (file, row, id, why)."""
    n = len(row)
    return Table({"FILENAME": np.asarray(np.broadcast_to(np.asarray(filename, dtype=str), (n,))),
                  "ROW": np.asarray(row, dtype=np.int64),
                  "ID": np.asarray([str(i).strip() for i in ids], dtype=str),
                  "REASON": np.asarray(reason, dtype=str),
                  "DETAIL": np.asarray(detail, dtype=str)})


def _good_median(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Row-wise median over good pixels; NaN for rows without any."""
    out = np.full(values.shape[0], np.nan)
    has = good.any(axis=1)
    if has.any():
        out[has] = np.nanmedian(np.where(good[has], values[has], np.nan), axis=1)
    return out


def _galactic_extinction(spectra: Spectra, config: PreprocessConfig, path):
    """Dereddened flux and ivar (the input arrays when the law is ``none``) and, per object,
    why it cannot be corrected (no finite, non-negative E(B-V))."""
    n = len(spectra)
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)
    ext = config.extinction
    if ext.law == "none" or n == 0:
        return spectra.flux, spectra.ivar, reason, detail
    if ext.column not in spectra.meta.colnames:
        logger.warning("%s: no %s column, so no Milky-Way extinction correction for its %d "
                       "objects (set [extinction] law = 'none' in --config to silence this)",
                       path or "input", ext.column, n)
        return spectra.flux, spectra.ivar, reason, detail
    ebv = np.asarray(spectra.meta[ext.column], dtype=np.float64)
    bad = ~(np.isfinite(ebv) & (ebv >= 0))
    reason[bad] = f"extinction: {ext.column} not a finite value >= 0"
    detail[bad] = [f"{ext.column} = {v}" for v in ebv[bad]]
    flux, ivar = deredden(spectra.wave, spectra.flux, spectra.ivar, np.where(bad, 0.0, ebv),
                          ext.r_v)
    return flux, ivar, reason, detail


def preprocess(spectra: Spectra, config: PreprocessConfig, sample: str = "all",
               path=None) -> Prepared:
    """Check, select, mask, normalise and split one batch of spectra.

    Arguments:
        spectra: objects as a reader returns them (raw flux, ivar and instrument mask).
        config: the preprocessing configuration (see :mod:`specsift.preprocess.config`).
        sample: name of the sample whose cuts apply (``bgs``, ``mws``, ``all``...).
        path: the input file, used in rejects when the metadata have no FILENAME column.

    Example:
        >>> import specsift
        >>> from specsift.datapaths import data_dir
        >>> spectra = specsift.read(data_dir() / "real/desi/coadd-5-169-thru20210419.fits")
        >>> prepared = preprocess(spectra, default_config("desi"), "bgs")
        >>> len(prepared.meta) + len(prepared.rejects) == len(spectra)
        True
    """
    n = len(spectra)
    meta = spectra.meta
    filename = (np.asarray(meta["FILENAME"], dtype=str) if "FILENAME" in meta.colnames
                else np.full(n, "" if path is None else str(path)))
    row = np.asarray(meta["ROW"], dtype=np.int64) if "ROW" in meta.colnames else np.arange(n)

    bad = bad_pixels(spectra, sky_line_mask(spectra.wave, config.masks))
    good = ~bad
    q_reason, q_detail = check_quality(spectra, bad)
    s_reason, s_detail = apply_cuts(meta, config.cuts(sample), path)
    flux, ivar, e_reason, e_detail = _galactic_extinction(spectra, config, path)
    norm, n_reason, n_detail = window_median(spectra.wave, flux, good, spectra.z,
                                             config.normalize)
    reason, detail = q_reason.copy(), q_detail.copy()
    for r, d in ((s_reason, s_detail), (e_reason, e_detail), (n_reason, n_detail)):
        take = (reason == "") & (r != "")
        reason[take], detail[take] = r[take], d[take]
    keep = np.flatnonzero(reason == "")
    drop = np.flatnonzero(reason != "")

    flux, ivar = normalize(flux[keep], ivar[keep], good[keep], norm[keep])
    out = meta[keep] if meta.colnames else Table()
    out["ID"] = spectra.ids[keep]
    out["Z"] = spectra.z[keep]
    out["SPLIT"] = assign_split(spectra.ids[keep], config.split.fractions, config.split.salt)
    out["NORM"] = norm[keep]
    with np.errstate(invalid="ignore"):
        out["SNR"] = _good_median(flux * np.sqrt(ivar), good[keep])
    out["MASKED_FRACTION"] = bad[keep].mean(axis=1)
    out["SAMPLE"] = np.full(len(keep), sample)
    out["FILENAME"] = filename[keep]
    out["ROW"] = row[keep]
    rejects = rejects_table(filename[drop], row[drop], spectra.ids[drop], reason[drop],
                            detail[drop])
    return Prepared(flux, ivar, out, rejects)
