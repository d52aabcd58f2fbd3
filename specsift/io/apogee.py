"""APOGEE reader: aspcapStar, apStar and bulk ``spectra-mock.fits`` files to :class:`Spectra`.

APOGEE spectra share one log-linear vacuum grid (8575 px, ``log10 lambda = 4.179 + 6e-6 i``) and
are in the stellar rest frame, so ``z`` is 0. A pixel whose uncertainty exceeds
``error_threshold`` (0.05 of the pseudo-continuum, as in de Mijolla & Ness 2022) carries sky-line
residuals or detector defects; it is kept in ``flux`` but flagged in ``mask`` so that later steps
treat it as missing rather than as a measurement.

Layouts recognised (by their HDUs, not their names):

* **bulk**: HDUs ``FLUX`` and ``ERROR`` (N x P), ``WAVE`` (P) and a table ``APOGEE_ID``.
* **aspcapStar**: HDU1 flux and HDU2 error, one spectrum of P pixels, log-lambda header.
* **apStar**: 2-D HDU1/HDU2/HDU3 (flux, error, pixel bitmask); row 0 is the combined spectrum.
  Its flux is not continuum-normalised, so the threshold applies to ``error / |flux|`` and the
  APOGEE ``BADMASK`` bits (0-7) are masked too.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import SpecsiftInputError
from ..spectra import Spectra
from .paths import expand_paths

__all__ = ["read", "iter_batches", "ERROR_THRESHOLD", "ASPCAP_CHIPS", "BADMASK", "log_wave"]

logger = logging.getLogger("specsift.io.apogee")

ERROR_THRESHOLD = 0.05
ASPCAP_CHIPS = ((322, 3242), (3648, 6048), (6412, 8306))
# APOGEE_PIXMASK bits 0-7: BADPIX, CRPIX, SATPIX, UNFIXABLE, BADDARK, BADFLAT, BADERR, NOSKY
BADMASK = 0xFF


def log_wave(header, n_pix: int) -> np.ndarray:
    """Vacuum wavelengths of a log-linear APOGEE header (CRVAL1, CDELT1, CRPIX1)."""
    try:
        crval, cdelt = float(header["CRVAL1"]), float(header["CDELT1"])
    except KeyError as error:
        raise ValueError(f"header lacks {error.args[0]} for the log-lambda grid") from None
    crpix = float(header.get("CRPIX1", 1.0))
    return 10.0 ** (crval + cdelt * (np.arange(n_pix) + 1.0 - crpix))


def _layout(hdul: fits.HDUList) -> str:
    names = {hdu.name for hdu in hdul}
    if {"FLUX", "ERROR", "WAVE", "APOGEE_ID"} <= names:
        return "bulk"
    if len(hdul) >= 3 and hdul[1].data is not None and hdul[1].data.ndim == 2:
        return "apstar"
    if len(hdul) >= 3 and hdul[1].data is not None and hdul[1].data.ndim == 1:
        return "aspcap"
    raise ValueError("not an APOGEE file: expected FLUX/ERROR/WAVE/APOGEE_ID HDUs (bulk), or "
                     "flux and error image HDUs (aspcapStar/apStar)")


def _build(flux, error, wave, ids, path: Path, rows, threshold: float, relative: bool,
           bitmask=None) -> Spectra:
    """Turn flux and error arrays into Spectra: ivar = 1/error^2, mask = censored or bad pixel."""
    flux = np.asarray(flux, np.float32)
    error = np.asarray(error, np.float32)
    good_err = np.isfinite(error) & (error > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ivar = np.where(good_err, 1.0 / np.square(error, dtype=np.float64), 0.0).astype(np.float32)
        scale = np.abs(flux) if relative else 1.0
        censored = ~good_err | ~(error <= threshold * scale) | ~np.isfinite(flux)
    if bitmask is not None:
        censored |= (np.asarray(bitmask).astype(np.int64) & BADMASK) != 0
    n = flux.shape[0]
    meta = Table({"FILENAME": np.full(n, path.name), "ROW": np.asarray(rows, np.int64),
                  "IS_TARGET": np.ones(n, bool)})
    return Spectra(wave, flux, ivar, censored, np.zeros(n), np.asarray(ids), meta, "apogee")


def _check_grid(wave: np.ndarray, ref: np.ndarray | None, path: Path) -> None:
    if ref is not None and (wave.shape != ref.shape or not np.allclose(wave, ref, rtol=1e-9)):
        raise SpecsiftInputError(f"wavelength grid ({len(wave)} px from {wave[0]:.2f} A) differs "
                                 f"from the first file's ({len(ref)} px from {ref[0]:.2f} A)", path)


def _bulk_chunks(hdul, path: Path, batch_size: int, threshold: float) -> Iterator[Spectra]:
    wave = np.asarray(hdul["WAVE"].data, np.float64)
    ids = np.char.strip(np.asarray(hdul["APOGEE_ID"].data["APOGEE_ID"]).astype(str))
    flux_hdu, err_hdu = hdul["FLUX"], hdul["ERROR"]
    n, p = flux_hdu.shape
    if err_hdu.shape != (n, p) or len(wave) != p or len(ids) != n:
        raise SpecsiftInputError(f"FLUX {flux_hdu.shape}, ERROR {err_hdu.shape}, WAVE {wave.shape}"
                                 f" and {len(ids)} APOGEE_IDs do not match", path)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        yield _build(flux_hdu.section[start:stop], err_hdu.section[start:stop], wave,
                     ids[start:stop], path, np.arange(start, stop), threshold, relative=False)


def _single(hdul, path: Path, layout: str, threshold: float) -> Spectra:
    header = hdul[1].header if "CRVAL1" in hdul[1].header else hdul[0].header
    if layout == "apstar":
        flux, error, bits = (np.asarray(hdul[i].data)[0:1] for i in (1, 2, 3))
        object_id = str(hdul[0].header.get("OBJID", path.stem)).strip()
        wave = log_wave(header, flux.shape[1])
        return _build(flux, error, wave, [object_id], path, [0], threshold, True, bits)
    flux, error = np.asarray(hdul[1].data)[None, :], np.asarray(hdul[2].data)[None, :]
    if flux.shape != error.shape:
        raise SpecsiftInputError(f"flux has {flux.shape[1]} pixels, error {error.shape[1]}", path)
    object_id = str(hdul[0].header.get("APOGEE_ID", hdul[0].header.get("OBJID", ""))).strip()
    if not object_id:  # aspcapStar-<release>-<APOGEE_ID>.fits; the id itself may contain '-'
        match = re.match(r"aspcapStar-[^-]+-(.+?)\.fits", path.name)
        object_id = match.group(1) if match else path.stem
    return _build(flux, error, log_wave(header, flux.shape[1]), [object_id], path, [0],
                  threshold, relative=False)


def iter_batches(paths, batch_size: int = 4096,
                 error_threshold: float = ERROR_THRESHOLD) -> Iterator[Spectra]:
    """Yield spectra in batches of at most ``batch_size`` rows (single-star files are grouped).

    Bulk files are read by row sections, so a survey never has to fit in memory at once.
    """
    pending: list[Spectra] = []
    ref_wave = None
    for path in expand_paths(paths):
        try:
            with fits.open(path, memmap=True) as hdul:
                layout = _layout(hdul)
                if layout == "bulk":
                    for chunk in _bulk_chunks(hdul, path, batch_size, error_threshold):
                        _check_grid(chunk.wave, ref_wave, path)
                        ref_wave = chunk.wave
                        yield chunk
                    continue
                one = _single(hdul, path, layout, error_threshold)
        except SpecsiftInputError:
            raise
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise SpecsiftInputError(f"cannot read as APOGEE spectra ({error})", path) from None
        _check_grid(one.wave, ref_wave, path)
        ref_wave = one.wave
        pending.append(one)
        if len(pending) >= batch_size:
            yield Spectra.concatenate(pending)
            pending = []
    if pending:
        yield Spectra.concatenate(pending)


def read(paths, error_threshold: float = ERROR_THRESHOLD, batch_size: int = 4096) -> Spectra:
    """Read APOGEE files (bulk, aspcapStar or apStar; files, folders or globs) into one Spectra.

    Arguments:
        paths: files, folders (``*.fits``) or glob patterns.
        error_threshold: pixels with a larger uncertainty are masked (relative to the flux for
            apStar, whose flux is not normalised).

    Example:
        >>> from specsift.datapaths import data_dir
        >>> spectra = read(data_dir() / "real/apogee/apStar-dr17-2M17335483-2753043.fits")
        >>> spectra.flux.shape, round(float(spectra.mask.mean()), 2)
        ((1, 8575), 0.12)
    """
    parts = list(iter_batches(paths, batch_size=batch_size, error_threshold=error_threshold))
    spectra = Spectra.concatenate(parts)
    logger.info("read %d APOGEE spectra, %.1f%% of pixels masked", len(spectra),
                100 * spectra.mask.mean())
    return spectra
