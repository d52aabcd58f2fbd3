"""From catalogues and spectra files to a fitted RSCA and back: the steps ``rsca fit``,
``rsca evaluate`` and the experiments share, written once.

* :func:`load_censored`: read the samples, find and censor the interstellar windows.
* :func:`fit_rsca`: the above, then the metric (plate-robust by default), plus the reference
  distances that turn an embedding distance into "how alike" (:func:`reference_distances`).
* :func:`evaluate_rsca`: leave-one-cluster-out rates of a fitted model with the plate checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import SpecsiftInputError
from ..io.apogee import ERROR_THRESHOLD
from ..preprocess.stellar_samples import SampleConfig
from ..runtime import DEFAULT_DEVICE
from .dataset import RSCAData, load_rsca_data
from .defaults import ISM_WINDOWS, N_COMPONENTS
from .doppelganger import DoppelgangerResult, loco_evaluate
from .ism_windows import apply_windows, find_ism_windows
from .rsca import RSCA

__all__ = ["load_censored", "fit_rsca", "evaluate_rsca", "evaluation_data", "reference_distances",
           "FittedRSCA"]

logger = logging.getLogger("specsift.metric")

N_FIELD_PAIRS = 50_000  # random field pairs kept as the reference distribution of distances


def load_censored(allstar, occam, spectra=None, abundances=None, config: SampleConfig | None = None,
                  error_threshold: float = ERROR_THRESHOLD, ism_windows: str = ISM_WINDOWS,
                  with_errors: bool = False, seed: int = 0, skip_bad: bool = False):
    """Samples with interstellar windows (App. A) found on the field and censored in place.

    ``ism_windows``: "detect" or "none"; with too few high-extinction stars to tell, no window
    is censored (a warning says so). Returns ``(data, windows, found)``, ``found`` the
    :class:`ISMWindows` (or None).
    """
    data = load_rsca_data(allstar, occam, spectra=spectra, abundances=abundances, config=config,
                          error_threshold=error_threshold, with_errors=with_errors,
                          skip_bad=skip_bad)
    found = None
    if abundances is None and ism_windows == "detect":
        try:
            found = find_ism_windows(data.field, data.samples.column("AK_TARG")[1], data.wave,
                                     seed=seed)
        except SpecsiftInputError as error:
            logger.warning("no interstellar windows censored: %s", error)
    windows = found.windows if found else []
    for matrix in (data.field, data.members):
        if data.wave is not None:
            apply_windows(matrix, data.wave, windows)
    return data, windows, found


@dataclass
class FittedRSCA:
    """What :func:`fit_rsca` returns: the model, its training data and the config to save."""

    model: RSCA
    data: RSCAData
    config: dict
    reference: dict


def field_obs(data: RSCAData, plate_column: str | None = None):
    """``(plates, vhelio, ak)`` of the field sample, what the plate-robust metric needs."""
    _, field_plates = data.plates(plate_column)
    _, _, vhelio, ak = data.rv_ak()
    return field_plates, vhelio, ak


def reference_distances(model: RSCA, data: RSCAData, seed: int = 0,
                        n_pairs: int = N_FIELD_PAIRS) -> dict:
    """The model's yardsticks: ``sibling_scale``, the median over training clusters of their
    median sibling distance, and ``field_pair_distances``, the sorted distances of random
    field pairs (what a chance pair looks like)."""
    members = model.transform(data.members, errors=data.member_errors)
    medians = []
    for name in np.unique(data.clusters):
        emb = members[data.clusters == name]
        d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
        medians.append(np.median(d[np.triu_indices(len(emb), 1)]))
    field = model.transform(data.field, errors=data.field_errors)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(field), (2, n_pairs))
    keep = i != j
    pairs = np.sqrt(((field[i[keep]] - field[j[keep]]) ** 2).sum(1))
    return {"sibling_scale": np.array([np.median(medians)]),
            "field_pair_distances": np.sort(pairs)}


def fit_rsca(allstar, occam, spectra=None, abundances=None, n_components: int = N_COMPONENTS,
             seed: int = 0, weighted: bool = False,
             error_threshold: float = ERROR_THRESHOLD, ism_windows: str = ISM_WINDOWS,
             plate_robust: bool = True, plate_column: str | None = None,
             skip_bad: bool = False, device: str = DEFAULT_DEVICE) -> FittedRSCA:
    """Fit RSCA from an allStar catalogue, an OCCAM member list and spectra (or abundances).

    ``plate_robust`` (default) keeps the metric from learning the plate (see
    :class:`~specsift.metric.rsca.LatentMetric`); the plates come from ``plate_column`` of the
    allStar (default: LOCATION_ID, FIELD or PLATE). ``skip_bad`` drops stars whose every
    pixel is censored instead of stopping (they are logged and counted in the config).
    ``device``: where the PPCA runs (``"auto"``: CUDA when present), as for the trainers.
    """
    if spectra is None and abundances is None:
        raise SpecsiftInputError("give spectra files, or abundance species to fit on abundance "
                                 "vectors")
    config = SampleConfig()
    data, windows, _ = load_censored(allstar, occam, spectra, abundances, config,
                                     error_threshold, ism_windows, weighted, seed,
                                     skip_bad)
    model = RSCA(n_components=n_components, compress=abundances is None, weighted=weighted,
                 seed=seed, ppca_params={"device": device},
                 plate_robust=plate_robust)
    model.fit(data.field, data.members, data.clusters, errors_field=data.field_errors,
              errors_members=data.member_errors,
              field_obs=field_obs(data, plate_column) if plate_robust else None)
    extra = {"kind": "abundances" if abundances else "spectra",
             "species": list(abundances or []), "error_threshold": error_threshold,
             "ism_windows": [list(w) for w in windows], "sample_config": config.to_dict(),
             "plate_column": plate_column,
             "wave": None if data.wave is None else np.asarray(data.wave).tolist(),
             "n_field": int(len(data.field)), "n_members": int(len(data.members)),
             "clusters": sorted(set(data.clusters.tolist())),
             "skipped_stars": list(data.skipped),
             "n_plate_directions": model.metric_.n_plate_directions_,
             "sigma_clust": model.sigma_clust_.tolist(), "scaling": model.scaling_.tolist()}
    logger.info("RSCA fitted on %d field stars and %d members (%d dimensions suppressed, %d "
                "plate-shared directions)", len(data.field), len(data.members),
                model.metric_.n_suppressed_, model.metric_.n_plate_directions_)
    return FittedRSCA(model, data, extra, reference_distances(model, data, seed))


def evaluate_rsca(model: RSCA, config: dict, allstar, occam, spectra=None,
                  n_dims: int | None = None, empty: str = "raise") -> DoppelgangerResult:
    """Leave-one-cluster-out rates of a fitted model on the samples of its config, with the
    plate-safe rate and the plate checks (plates from the allStar)."""
    data = evaluation_data(config, allstar, occam, spectra, with_errors=model.weighted)
    member_plates, field_plates = data.plates(config.get("plate_column"))
    return loco_evaluate(model.latents(data.field, data.field_errors),
                         model.latents(data.members, data.member_errors), data.clusters,
                         *data.rv_ak(), metric=model.latent_metric(), n_dims=n_dims,
                         empty=empty, member_plates=member_plates, field_plates=field_plates,
                         field_candidates=data.field_candidates)


def evaluation_data(config: dict, allstar, occam, spectra=None,
                    with_errors: bool = False) -> RSCAData:
    """The samples a fitted model (its ``config``) is evaluated on, censored as at fit time."""
    species = config["species"] if config["kind"] == "abundances" else None
    if species is None and not spectra:
        raise SpecsiftInputError("this model was fitted on spectra: give spectra files")
    return load_rsca_data(allstar, occam, spectra=spectra, abundances=species,
                          config=SampleConfig.from_dict(config["sample_config"]),
                          error_threshold=config["error_threshold"],
                          windows=config["ism_windows"], with_errors=with_errors)


def check_grid(config: dict, wave: np.ndarray, source) -> None:
    """Stop when spectra are on another wavelength grid than the model was fitted on."""
    expected = config.get("wave")
    if expected is None:
        raise SpecsiftInputError("this model was fitted on abundances, not spectra", source)
    if len(wave) != len(expected) or not np.allclose(wave, expected):
        raise SpecsiftInputError(f"wavelength grid ({len(wave)} pixels, {wave[0]:.2f}-"
                                 f"{wave[-1]:.2f} A) differs from the model's ({len(expected)} "
                                 f"pixels, {expected[0]:.2f}-{expected[-1]:.2f} A)", source)


def embed_files(model: RSCA, config: dict, spectra, keep=None, n_dims: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Embed every spectrum in ``spectra`` (files or folders) censored as at fit time;
    ``keep(ids) -> bool array`` selects the stars of each batch. Returns (ids, embedding)."""
    from ..io.apogee import iter_batches
    from .dataset import censor, chip_pixels

    ids, parts = [], []
    for batch in iter_batches(spectra, error_threshold=config["error_threshold"]):
        pixels = chip_pixels(len(batch.wave))
        check_grid(config, batch.wave[pixels], batch.meta["FILENAME"][0])
        if keep is not None:
            batch = batch[np.flatnonzero(keep(batch.ids))]
            if not len(batch.ids):
                continue
        flux, errors = censor(batch, pixels, config["ism_windows"], model.weighted)
        ids.append(np.asarray(batch.ids).astype(str))
        parts.append(model.transform(flux, n_dims=n_dims, errors=errors))
    if not ids:
        return np.empty(0, str), np.empty((0, n_dims or len(model.scaling_)))
    return np.concatenate(ids), np.concatenate(parts)
