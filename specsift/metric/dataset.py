"""Assemble what RSCA trains and evaluates on: catalogues, samples and censored spectra matrices.

Spectra are streamed from disk in batches and only the rows of the selected stars are kept,
as float32 with NaN for censored pixels (error above the threshold, APOGEE bad pixels,
interstellar windows). On the standard 8575-pixel apStar grid only the pixels of the three
ASPCAP chip ranges are kept (7214), since the rest is never observed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SpecsiftInputError
from ..spectra import Spectra
from ..io.apogee import ASPCAP_CHIPS, ERROR_THRESHOLD, iter_batches
from ..io.catalogs import abundance_matrix, read_allstar, read_occam
from .ism_windows import window_mask
from .plates import observing_groups
from ..preprocess.stellar_samples import SampleConfig, StellarSamples, select_samples

__all__ = ["SpectraMatrix", "load_spectra", "censor", "RSCAData", "load_rsca_data", "chip_pixels",
           "candidate_clusters"]

logger = logging.getLogger("specsift.metric")


def chip_pixels(n_pix: int) -> np.ndarray:
    """Pixels worth modelling: the ASPCAP chip ranges on the 8575-pixel grid, else all."""
    if n_pix == 8575:
        return np.concatenate([np.arange(a, b) for a, b in ASPCAP_CHIPS])
    return np.arange(n_pix)


def censor(batch: Spectra, pixels: np.ndarray, windows=(), with_errors: bool = False,
           allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Flux (and errors) of a batch on ``pixels``, NaN where masked or inside a window.

    Raises :class:`SpecsiftInputError` naming the file, row and id of a star with no pixel
    left, unless ``allow_empty`` (its row is then all NaN).
    """
    bad = batch.mask[:, pixels] | window_mask(batch.wave[pixels], windows)
    empty = np.flatnonzero(bad.all(1))
    if len(empty) and not allow_empty:
        j = empty[0]
        raise SpecsiftInputError("every pixel of this spectrum is censored",
                                 batch.meta["FILENAME"][j], int(batch.meta["ROW"][j]),
                                 batch.ids[j])
    flux = np.where(bad, np.nan, batch.flux[:, pixels]).astype(np.float32)
    if not with_errors:
        return flux, None
    with np.errstate(divide="ignore"):
        errors = np.where(bad, np.nan, 1.0 / np.sqrt(batch.ivar[:, pixels]))
    return flux, errors.astype(np.float32)


@dataclass
class SpectraMatrix:
    """Censored spectra of chosen stars: ``flux`` (N, P) with NaN where censored."""

    flux: np.ndarray
    error: np.ndarray | None
    wave: np.ndarray
    ids: np.ndarray
    pixels: np.ndarray          # columns of the file grid kept
    skipped: np.ndarray         # (N,) bool: every pixel censored (only with skip_bad)


def load_spectra(paths, ids, error_threshold: float = ERROR_THRESHOLD, windows=(),
                 with_errors: bool = False, batch_size: int = 4096,
                 skip_bad: bool = False) -> SpectraMatrix:
    """Stream spectra files and keep the rows of ``ids`` (in that order) as a censored matrix.

    Raises :class:`SpecsiftInputError` naming the first missing id, or the file, row and id
    of a star whose every pixel is censored; with ``skip_bad`` such stars are flagged in
    ``skipped`` (and logged) instead.
    """
    ids = np.asarray(ids).astype(str)
    position = {star: i for i, star in enumerate(ids)}
    flux = error = wave = pixels = None
    found = np.zeros(len(ids), bool)
    for batch in iter_batches(paths, batch_size=batch_size, error_threshold=error_threshold):
        if flux is None:
            pixels = chip_pixels(len(batch.wave))
            wave = batch.wave[pixels]
            flux = np.full((len(ids), len(pixels)), np.nan, np.float32)
            error = np.full_like(flux, np.nan) if with_errors else None
        rows = np.array([position.get(str(s), -1) for s in batch.ids])
        take = np.flatnonzero(rows >= 0)
        if not len(take):
            continue
        part = batch[take]
        part_flux, part_error = censor(part, pixels, windows, with_errors, skip_bad)
        for j in np.flatnonzero(np.isnan(part_flux).all(1)):
            logger.warning("%s, row %d, id %s: every pixel is censored; star skipped",
                           part.meta["FILENAME"][j], int(part.meta["ROW"][j]), part.ids[j])
        flux[rows[take]] = part_flux
        if with_errors:
            error[rows[take]] = part_error
        found[rows[take]] = True
    if flux is None:
        raise SpecsiftInputError("no spectra found", str(paths))
    if not found.all():
        missing = ids[~found]
        raise SpecsiftInputError(f"{len(missing)} catalogue star(s) have no spectrum in the "
                                 f"spectra files, e.g. APOGEE_ID {missing[0]}", str(paths))
    logger.info("loaded %d spectra x %d pixels, %.1f%% censored", len(ids), len(pixels),
                100 * np.isnan(flux).mean())
    return SpectraMatrix(flux, error, wave, ids, pixels, np.isnan(flux).all(1))


@dataclass
class RSCAData:
    """Field and member samples with their spectra or abundances, RVs and extinctions."""

    samples: StellarSamples
    field: np.ndarray            # (N_field, P) spectra (NaN censored) or (N_field, S) abundances
    members: np.ndarray
    field_errors: np.ndarray | None
    member_errors: np.ndarray | None
    wave: np.ndarray | None
    field_candidates: np.ndarray | None = None   # (N_field,) see :func:`candidate_clusters`
    skipped: tuple[str, ...] = ()                # APOGEE_IDs dropped by skip_bad

    @property
    def clusters(self) -> np.ndarray:
        return self.samples.clusters

    def rv_ak(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(member VHELIO, member AK, field VHELIO, field AK) for the doppelganger cut."""
        mv, fv = self.samples.column("VHELIO_AVG")
        ma, fa = self.samples.column("AK_TARG")
        return mv, ma, fv, fa

    def plates(self, column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(member, field) observing groups from the allStar (:func:`.plates.observing_groups`)."""
        groups = observing_groups(self.samples.allstar, column)
        return groups[self.samples.members], groups[self.samples.field]


def candidate_clusters(occam, ids) -> np.ndarray:
    """Per star of ``ids``, the cluster OCCAM gives it a non-zero membership probability in
    ("" for none): field stars that may be siblings, left out of the plate checks."""
    prob = np.asarray(occam["CG_PROB"], np.float64)
    order = np.argsort(prob, kind="stable")          # the most probable cluster wins
    listed = {str(i): str(c) for i, c, p in zip(np.asarray(occam["APOGEE_ID"])[order],
                                               np.asarray(occam["CLUSTER"])[order], prob[order])
              if p > 0}
    return np.array([listed.get(str(i), "") for i in ids])


def load_rsca_data(allstar: str | Path, occam: str | Path, spectra=None, abundances=None,
                   config: SampleConfig | None = None, error_threshold: float = ERROR_THRESHOLD,
                   windows=(), with_errors: bool = False, skip_bad: bool = False) -> RSCAData:
    """Read the catalogues, select the samples, and load spectra or abundance vectors.

    Exactly one of ``spectra`` (paths) and ``abundances`` (a tuple of species) is used.
    ``skip_bad``: leave out stars whose every pixel is censored (listed in ``skipped``)
    instead of stopping; a cluster left with one member is dropped.
    """
    config = replace(config or SampleConfig(), require_member_abundances=bool(abundances))
    table = read_allstar(allstar)
    members = read_occam(occam)
    samples = select_samples(table, members, config)
    ids = np.asarray(table["APOGEE_ID"])
    candidates = candidate_clusters(members, ids[samples.field])
    if abundances:
        values = abundance_matrix(table, abundances).astype(np.float32)
        return RSCAData(samples, values[samples.field], values[samples.members], None, None, None,
                        candidates)
    if spectra is None:
        raise SpecsiftInputError("give spectra files or abundance species")
    matrix = load_spectra(spectra, ids[samples.rows], error_threshold, windows, with_errors,
                          skip_bad=skip_bad)
    n_mem = len(samples.members)
    keep = ~matrix.skipped
    if skip_bad:
        names, counts = np.unique(samples.clusters[keep[:n_mem]], return_counts=True)
        alone = np.isin(samples.clusters, names[counts < config.min_members])
        if alone.any():
            logger.warning("cluster(s) %s keep fewer than %d members after skipping stars; "
                           "dropped", ", ".join(np.unique(samples.clusters[alone])),
                           config.min_members)
        keep[:n_mem] &= ~alone
    err = matrix.error
    skipped = tuple(str(i) for i in matrix.ids[matrix.skipped])
    if skipped:
        logger.warning("%d star(s) skipped: every pixel censored", len(skipped))
    samples = StellarSamples(samples.field[keep[n_mem:]], samples.members[keep[:n_mem]],
                             samples.clusters[keep[:n_mem]], samples.allstar)
    return RSCAData(samples, matrix.flux[n_mem:][keep[n_mem:]], matrix.flux[:n_mem][keep[:n_mem]],
                    None if err is None else err[n_mem:][keep[n_mem:]],
                    None if err is None else err[:n_mem][keep[:n_mem]],
                    matrix.wave, candidates[keep[n_mem:]], skipped)
