"""One record per object for the figures and the review page: its spectrum and both models' fits.

The gallery, the reconstruction figure and the review page all show the same thing for an object:
the observed spectrum, its inverse variance and masked pixels, the galaxy model's
reconstruction, the star model's reconstruction (seen in the star model's frame, exactly as the
catalogue scored it) and the residual significance ``(flux - model) * sqrt(ivar)``. They all get
it from :func:`spectrum_records`, so a figure can never show another fit than the one that was
scored.
"""

from __future__ import annotations

import numpy as np
from ..runtime import DEFAULT_DEVICE

__all__ = ["spectrum_records", "residual_significance", "open_sources", "ranked_rows",
           "REQUIRED_COLUMNS"]

#: catalogue columns the figures and the review page need
REQUIRED_COLUMNS = ("RANK", "STORE_ROW", "TARGETID", "Z", "CHI2_GALAXY", "OUTLIER_SCORE")


def residual_significance(flux, ivar, model) -> np.ndarray:
    """``(flux - model) * sqrt(ivar)`` per pixel: the residual in units of its noise; NaN where
    the pixel is masked (``ivar <= 0``) or the model is undefined."""
    flux, ivar, model = (np.asarray(a, dtype=np.float64) for a in (flux, ivar, model))
    good = (ivar > 0) & np.isfinite(model) & np.isfinite(flux)
    out = np.full(np.broadcast(flux, ivar, model).shape, np.nan)
    np.multiply(flux - model, np.sqrt(np.where(good, ivar, 0.0)), out=out, where=good)
    return out


def _encoded(autoencoder, source, rows, batch_size, device) -> dict[int, tuple]:
    from ..models.inference import encode_batches

    out = {}
    pairs = zip(source.batches(batch_size=batch_size, rows=rows),
                encode_batches(autoencoder, source, batch_size=batch_size, rows=rows,
                               device=device, return_model=True))
    for batch, encoded in pairs:
        for i, row in enumerate(batch["row"]):
            out[int(row)] = (batch["flux"][i], float(batch["z"][i]), encoded["model"][i],
                             float(encoded["chi2"][i]), encoded["latents"][i])
    return out


def spectrum_records(store, rows, galaxy, star=None, device: str = DEFAULT_DEVICE,
                     batch_size: int = 256) -> list[dict]:
    """Spectra and model fits of the store rows ``rows``, one dict per row, in the order given.

    Arguments:
        store: the :class:`~specsift.store.SpectraStore` the catalogue was scored from.
        rows: store rows (``STORE_ROW`` of the catalogue); repeats are allowed.
        galaxy: the galaxy autoencoder (seen at the reported redshift).
        star: the star autoencoder or None; seen in the star frame of the catalogue (the reported
            redshift when it lies in the star model's range, else at rest, renormalised; see
            :mod:`specsift.catalog.scoring`). Its model is scaled back to the store's
            normalisation so both fits overlay the same data.
        device: torch device.

    Returns:
        dicts with ``row``, ``wave`` (P,), ``flux``, ``ivar`` (P,), ``mask`` (P,) bool (True =
        masked), ``z``, ``model_galaxy``, ``chi2_galaxy``, ``resid_galaxy``, ``latents_galaxy``
        and, with ``star``, ``model_star``, ``chi2_star``, ``resid_star``, ``z_star`` (the frame
        the star model saw); without it those are None.
    """
    from ..catalog.scoring import _StarFrame

    rows = np.asarray(rows, dtype=np.int64)
    wanted = np.unique(rows)
    ivars = {}
    for batch in store.batches(batch_size=batch_size, rows=wanted):
        ivars.update({int(r): batch["ivar"][i] for i, r in enumerate(batch["row"])})
    fits_g = _encoded(galaxy, store, wanted, batch_size, device)
    fits_s = {}
    if star is not None:
        frame = _StarFrame(store, float(star.z_min), float(star.z_max))
        fits_s = _encoded(star, frame, wanted, batch_size, device)
    wave = np.asarray(store.wave, dtype=np.float64)
    records = []
    for row in rows.tolist():
        flux, z, model, chi2, latents = fits_g[row]
        ivar = ivars[row]
        record = {"row": row, "wave": wave, "flux": flux, "ivar": ivar, "mask": ~(ivar > 0),
                  "z": z, "model_galaxy": model, "chi2_galaxy": chi2,
                  "resid_galaxy": residual_significance(flux, ivar, model),
                  "latents_galaxy": latents, "model_star": None, "chi2_star": None,
                  "resid_star": None, "z_star": None}
        if row in fits_s:
            flux_s, z_s, model_s, chi2_s, _ = fits_s[row]
            scale = _scale(flux, flux_s)
            model_s = model_s * scale
            record.update(model_star=model_s, chi2_star=chi2_s, z_star=z_s,
                          resid_star=residual_significance(flux, ivar, model_s))
        records.append(record)
    return records


def _scale(flux, flux_frame) -> float:
    """Factor from the star frame's normalisation back to the store's (1 when not renormalised)."""
    flux, flux_frame = np.asarray(flux, np.float64), np.asarray(flux_frame, np.float64)
    good = np.isfinite(flux) & np.isfinite(flux_frame)
    norm = float(np.dot(flux_frame[good], flux_frame[good]))
    return float(np.dot(flux[good], flux_frame[good]) / norm) if norm > 0 else 1.0


def open_sources(metadata: dict, store=None, galaxy_model=None, star_model=None,
                 device: str = DEFAULT_DEVICE, catalog=None, need_star: bool = True):
    """The store and the autoencoders a catalogue was scored with (paths from its metadata
    unless given): ``(store, galaxy autoencoder, star autoencoder or None)``.

    The star model is None when ``need_star`` is False or the catalogue records none.
    """
    from ..errors import SpecsiftInputError
    from ..models.modeldir import ModelDir
    from ..store import SpectraStore

    store_path = store or metadata.get("STORE")
    galaxy_path = galaxy_model or metadata.get("GALMODEL")
    star_path = (star_model or metadata.get("STARMODL")) if need_star else None
    if not store_path or not galaxy_path:
        raise SpecsiftInputError("the catalogue records no store / galaxy model; pass --store "
                                 "and --galaxy-model", path=catalog)
    galaxy = ModelDir(galaxy_path).load_autoencoder(device=device)
    star = ModelDir(star_path).load_autoencoder(device=device) if star_path else None
    return SpectraStore(store_path), galaxy, star


def ranked_rows(table, top: int, order: str = "RANK", hide_stars: bool = False, path=None,
                keep=None):
    """The ``top`` rows of a catalogue by ``order`` (RANK, or REVIEW_RANK of a re-ranked one),
    leaving out unscored objects (and those classified as stars with ``hide_stars``); ``keep``,
    a boolean mask over the rows, restricts the choice further (e.g. to one sample, see
    :func:`specsift.catalog.samples.in_sample`)."""
    from ..errors import SpecsiftInputError

    for name in (*REQUIRED_COLUMNS, order):
        if name not in table.colnames:
            raise SpecsiftInputError(f"catalogue has no {name} column; was it written by "
                                     "`specsift score`" + (" and `specsift rerank`"
                                                          if order == "REVIEW_RANK" else "")
                                     + "?", path=path)
    keep_rows, keep = keep, np.isfinite(np.asarray(table["OUTLIER_SCORE"], dtype=float))
    if hide_stars and "IS_STAR" in table.colnames:
        keep &= ~np.asarray(table["IS_STAR"], dtype=bool)
    if keep_rows is not None:
        keep &= np.asarray(keep_rows, dtype=bool)
    chosen = np.flatnonzero(keep)
    chosen = chosen[np.argsort(np.asarray(table[order])[chosen], kind="stable")][:top]
    return table[chosen]
