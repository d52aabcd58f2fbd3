"""Stream objects through the galaxy and the star pipelines and turn the scores into catalogue rows.

A pipeline is one model directory: autoencoder (reconstruction, chi2) + flow (latent density).
Every object is scored by both. The galaxy model sees the object at its reported redshift; the
star model sees it at its reported redshift when that lies in the star model's range (a stellar
radial velocity), and at rest (z = 0) otherwise: the star hypothesis is "this is a Milky Way
object", whatever redshift the pipeline reported, which is how a star that was reported as a
z = 0.2 galaxy gets caught. (Clipping to the edge of the range instead, z = 0.01, would shift
the star's lines by 3000 km/s and make the star model fail exactly on those objects.)

Objects are never dropped: one outside the galaxy model's redshift range is still scored (and
keeps its flag), one without any valid pixel gets NaN scores and ranks last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..models.defaults import INFERENCE_BATCH
from ..preprocess import PreprocessConfig, window_median
from ..runtime import DEFAULT_DEVICE
from .calibration import evidence_for, load_calibration
from .classify import StarGalaxyRule
from .evidence import OutlierCalibration
from .stellar import (BLEND_TAIL_FROM, STAR_BLEND, STAR_LIKE, TAIL_FROM, ValidationNull,
                      blend_improvement, combine, reference_galaxies)

__all__ = ["SurveyModel", "score_rows", "assemble_catalog", "bh_qvalues", "LEGACY_SCORE"]

logger = logging.getLogger("specsift.catalog")

LEGACY_SCORE = "OUTLIER_SCORE = -LOGP_GALAXY (flow log-density of the galaxy latents)"


class _StarFrame:
    """A read-only view of a store whose batches are what the star model should see.

    Redshift: the reported one inside ``[zmin, zmax]`` (a stellar radial velocity), else the
    rest frame (0, or the nearest edge when the range excludes 0). An object moved to the rest
    frame is also normalised again, by the median flux in the store's rest-frame window at its
    new redshift: the store normalised it at the reported redshift, i.e. in another stretch of
    the spectrum, and for a red star at a reported z = 0.3 that scale is off by a factor of 2-3,
    which no stellar model can absorb.
    """

    def __init__(self, store, zmin: float, zmax: float):
        self._store, self._zmin, self._zmax = store, zmin, zmax
        manifest = getattr(store, "manifest", {})
        self._normalize = PreprocessConfig.from_dict(manifest["config"]).normalize \
            if "config" in manifest else None

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __len__(self) -> int:
        return len(self._store)

    def batches(self, *args, **kwargs):
        rest = min(max(0.0, self._zmin), self._zmax)
        for batch in self._store.batches(*args, **kwargs):
            z = np.asarray(batch["z"])
            moved = ~((z >= self._zmin) & (z <= self._zmax))
            out = {**batch, "z": np.where(moved, rest, z).astype(np.float32)}
            if moved.any() and self._normalize and self._normalize.method != "none":
                flux, ivar = np.array(batch["flux"]), np.array(batch["ivar"])
                scale, *_ = window_median(np.asarray(self._store.wave), flux[moved],
                                          ivar[moved] > 0, np.full(moved.sum(), rest),
                                          self._normalize)
                scale = np.where(scale > 0, scale, 1.0)        # no usable window: keep the scale
                flux[moved] /= scale[:, None].astype(np.float32)
                ivar[moved] *= np.square(scale)[:, None].astype(np.float32)
                out.update(flux=flux, ivar=ivar)
            yield out


@dataclass
class SurveyModel:
    """One pipeline (autoencoder + flow) loaded from its model directory, ready to score."""

    path: Path
    autoencoder: object
    flow: object
    calibration: OutlierCalibration | None = None

    @classmethod
    def load(cls, path: str | Path, device: str = DEFAULT_DEVICE) -> "SurveyModel":
        from ..models.flow import LatentFlow
        from ..models.modeldir import ModelDir

        model_dir = ModelDir(path)
        autoencoder = model_dir.load_autoencoder(device=str(device))
        flow = LatentFlow.load(model_dir, device=str(device))
        return cls(Path(path), autoencoder, flow, load_calibration(model_dir))

    @property
    def refine_steps(self) -> int:
        """Steps of the per-object fit: those the calibration was made with (0 without one)."""
        return self.calibration.refine_steps if self.calibration is not None else 0

    @property
    def z_range(self) -> tuple[float, float]:
        """Redshifts the autoencoder's rest-frame grid covers."""
        return float(self.autoencoder.z_min), float(self.autoencoder.z_max)

    def score_batches(self, store, rows: np.ndarray, batch_size: int, device: str,
                      star_frame: bool = False, evidence: bool = False):
        """Yield, batch by batch of ``rows``: chi2, log p, valid pixels and flags, and the
        fit itself (``flux``, ``weight``, ``model`` on the observed pixels); with ``evidence``
        (and a calibrated model) also the outlier score and its reason, from the refined fit the
        calibration was made with (so ``chi2`` is that fit's too); without, the encoder's fit."""
        from ..models.inference import encode_batches
        from ..models.inputs import FLAG_NO_VALID_PIXELS

        source = _StarFrame(store, *self.z_range) if star_frame else store
        tests = evidence_for(self.autoencoder, self.calibration) \
            if evidence and self.calibration is not None else None
        for batch in encode_batches(self.autoencoder, source, batch_size=batch_size, rows=rows,
                                    device=str(device), return_model=True, return_input=True,
                                    refine_steps=self.refine_steps if tests is not None else 0):
            latents = np.asarray(batch["latents"])
            # a redshift outside the model range still gives a usable (if poor) fit: score it;
            # only an object with no valid pixel has no score at all
            ok = ((np.asarray(batch["flag"]) & FLAG_NO_VALID_PIXELS) == 0) \
                & np.isfinite(latents).all(axis=1)
            nan = np.full(len(latents), np.nan)
            logp, score = nan.copy(), nan.copy()
            reason = np.full(len(latents), "", dtype=object)
            if ok.any():
                logp[ok] = self.flow.log_prob(latents[ok])
            if ok.any() and tests is not None:
                log10p = tests.log10_tests(
                    *(batch[k][ok] for k in ("flux", "weight", "model", "z")),
                    self.flow.base_coordinates(latents[ok]))
                score[ok], best = tests.score(log10p)
                reason[ok] = np.asarray(tests.labels, dtype=object)[best]
            refined = "chi2_encoder" in batch
            yield {"row": np.asarray(batch["row"]), "n_good": np.asarray(batch["n_good"]),
                   "flag": np.asarray(batch["flag"]), "logp": logp, "score": score,
                   "reason": reason, "ok": ok,
                   "chi2": np.where(ok, batch["chi2_encoder"] if refined else batch["chi2"],
                                    np.nan),
                   "chi2_refined": np.where(ok, batch["chi2"], np.nan) if refined else nan,
                   **{key: np.where(ok, batch[key], np.nan) if refined else nan
                      for key in ("velocity", "dispersion")},
                   **{key: batch[key] for key in ("flux", "weight", "model")}}


def score_rows(store, galaxy: SurveyModel, star: SurveyModel, rows: np.ndarray,
               batch_size: int = INFERENCE_BATCH,
               device: str = DEFAULT_DEVICE) -> dict[str, np.ndarray]:
    """Score the store rows ``rows`` (sorted) under both pipelines: the part-file columns.

    The two pipelines stream the same batches side by side, so that the blend test
    (:func:`~specsift.catalog.stellar.blend_improvement`) sees both fits of each object."""
    rows = np.asarray(rows, dtype=np.int64)
    parts: dict[str, list] = {}
    for g, s in zip(galaxy.score_batches(store, rows, batch_size, device, evidence=True),
                    star.score_batches(store, rows, batch_size, device, star_frame=True)):
        if not np.array_equal(g["row"], s["row"]):
            raise RuntimeError("the galaxy and star pipelines streamed different rows; "
                               "scores cannot be matched to objects")
        blend = np.where(g["ok"] & s["ok"], blend_improvement(g["flux"], g["weight"],
                                                              g["model"], s["model"]), np.nan)
        columns = {"STORE_ROW": g["row"], "CHI2_GALAXY": g["chi2"], "CHI2_STAR": s["chi2"],
                   "CHI2_REFINED": g["chi2_refined"], "DV_GALAXY": g["velocity"],
                   "DSIGMA2_GALAXY": g["dispersion"],
                   "LOGP_GALAXY": g["logp"], "LOGP_STAR": s["logp"], "STAR_BLEND_F": blend,
                   "OUTLIER_SCORE": g["score"], "OUTLIER_REASON": g["reason"],
                   "NPIX_GALAXY": g["n_good"], "NPIX_STAR": s["n_good"],
                   "FLAG_GALAXY": g["flag"], "FLAG_STAR": s["flag"]}
        for key, value in columns.items():
            parts.setdefault(key, []).append(value)
    out = {key: np.concatenate(value) for key, value in parts.items()}
    if not np.array_equal(out["STORE_ROW"], rows):
        raise RuntimeError("encode_batches returned other rows than asked for; "
                           "scores cannot be matched to objects")
    calibrated = galaxy.calibration is not None
    score = out["OUTLIER_SCORE"] if calibrated else -out["LOGP_GALAXY"]
    out.update(OUTLIER_SCORE=score.astype(np.float64),
               OUTLIER_PVALUE=galaxy.calibration.pvalue(score) if calibrated
               else np.full(len(rows), np.nan),
               OUTLIER_REASON=out["OUTLIER_REASON"].astype(str))
    for key in ("CHI2_GALAXY", "CHI2_STAR"):
        out[key] = out[key].astype(np.float64)
    for key in ("NPIX_GALAXY", "NPIX_STAR", "FLAG_GALAXY", "FLAG_STAR"):
        out[key] = out[key].astype(np.int32)
    return out


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN p-values stay NaN and do not count as tests).

    Example:
        >>> bh_qvalues(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()[:3]
        [0.03, 0.04, 0.04]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    q = np.full(len(p), np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    if not len(tested):
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    ranked = p[order] * len(order) / np.arange(1, len(order) + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def _ranks(score: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """1 = highest score; unscored objects (NaN) come last; ties are broken by the higher
    ``tie_break``, then by store row. Why a tie-break: a conformal p-value is a step function,
    and the evidence it was computed from still orders the objects within a step."""
    order = np.lexsort((np.arange(len(score)), -np.nan_to_num(tie_break, nan=-np.inf),
                        -np.nan_to_num(score, nan=-np.inf)))
    ranks = np.empty(len(score), dtype=np.int64)
    ranks[order] = np.arange(1, len(score) + 1)
    return ranks


def assemble_catalog(scores: dict[str, np.ndarray], meta: Table, rule: StarGalaxyRule) -> Table:
    """Catalogue rows from the part-file scores and the store's metadata (store row order).

    With a calibrated galaxy model, ``OUTLIER_PVALUE`` combines the p-value of the residual
    evidence (:mod:`specsift.catalog.evidence`) with the star-likeness and star-blend tests
    (:mod:`specsift.catalog.stellar`) and ``OUTLIER_SCORE = -log10 OUTLIER_PVALUE``; without
    one, the part files' score (``-LOGP_GALAXY``) is kept. ``OUTLIER_QVALUE`` is the
    Benjamini-Hochberg q-value of ``OUTLIER_PVALUE`` over the objects the survey reported as
    galaxies (``SPECTYPE``; without it, those the rule calls galaxies; NaN for the others), and
    the reason of an object classified as a star is ``star-like``. Part
    files of an older specsift have no ``STAR_BLEND_F``: the blend test is left out.
    """
    rows = scores["STORE_ROW"]
    meta = meta[rows]
    table = Table()
    table["TARGETID"] = meta["TARGETID"] if "TARGETID" in meta.colnames else meta["ID"]
    table["Z"] = np.asarray(meta["Z"], dtype=np.float64)
    for name in ("CHI2_GALAXY", "CHI2_STAR", "CHI2_REFINED", "DV_GALAXY", "DSIGMA2_GALAXY",
                 "LOGP_GALAXY", "LOGP_STAR"):
        if name in scores:   # part files of an older specsift lack the refined fit's columns
            table[name] = scores[name]
    kwargs = dict(chi2_galaxy=scores["CHI2_GALAXY"], chi2_star=scores["CHI2_STAR"],
                  npix_galaxy=scores["NPIX_GALAXY"], npix_star=scores["NPIX_STAR"],
                  logp_galaxy=scores["LOGP_GALAXY"], logp_star=scores["LOGP_STAR"])
    is_star = rule.predict(**kwargs)
    log_ratio = rule.log_ratio(**kwargs)
    pvalue = np.asarray(scores["OUTLIER_PVALUE"], dtype=np.float64)
    reason = np.asarray(scores["OUTLIER_REASON"], dtype=object)
    evidence = score = np.asarray(scores["OUTLIER_SCORE"], dtype=np.float64)
    statistics = {STAR_LIKE: log_ratio, STAR_BLEND: scores.get("STAR_BLEND_F")}
    tail_from = {STAR_LIKE: TAIL_FROM, STAR_BLEND: BLEND_TAIL_FROM}
    split = meta["SPLIT"] if "SPLIT" in meta.colnames else None
    galaxies = reference_galaxies(meta, is_star)
    tests = {}
    if np.isfinite(pvalue).any():
        for name, statistic in statistics.items():
            if statistic is None:
                logger.info("no STAR_BLEND_F in the part files (an older specsift): "
                            "OUTLIER_SCORE leaves out the star blend test")
                continue
            null = ValidationNull.from_catalog(statistic, split, galaxies, name,
                                               tail_from[name])
            if null is not None:
                tests[name] = null.log10_pvalue(statistic)
    if tests:
        with np.errstate(divide="ignore"):
            log10_p, decides = combine(np.log10(pvalue), *tests.values())
        pvalue, score = 10.0 ** log10_p, -log10_p
        names = np.array(["", *tests], dtype=object)[decides]
        reason = np.where((decides > 0) & (reason != ""), names, reason)
    table["OUTLIER_SCORE"] = score
    table["RANK"] = _ranks(score, evidence)
    table["OUTLIER_PVALUE"] = pvalue
    # each test's own answer, so that a reader sees why and can recombine
    table["SCORE_RESIDUALS"] = evidence
    table["PVALUE_RESIDUALS"] = np.asarray(scores["OUTLIER_PVALUE"], dtype=np.float64)
    for name, log10_p in tests.items():
        table[f"PVALUE_{name.upper().replace('-', '_').replace(' ', '_')}"] = 10.0 ** log10_p
    # the null is "a normal galaxy", so the family of tests is the objects it is a question for:
    # those the survey reported as galaxies (the null's own population). Counting the stars of
    # a mixed survey would loosen every galaxy's q-value; and a family chosen by this
    # catalogue's own star/galaxy call would drop the anomalies the galaxy model fits worst,
    # which that call names stars for it.
    table["OUTLIER_QVALUE"] = bh_qvalues(np.where(galaxies, pvalue, np.nan))
    reason[is_star & (reason != "")] = STAR_LIKE
    table["OUTLIER_REASON"] = reason.astype(str)
    table["IS_STAR"] = is_star
    table["STAR_LOGLR"] = log_ratio
    if "STAR_BLEND_F" in scores:
        table["STAR_BLEND_F"] = scores["STAR_BLEND_F"]
    for name in ("NPIX_GALAXY", "NPIX_STAR", "FLAG_GALAXY", "FLAG_STAR", "STORE_ROW"):
        table[name] = scores[name]
    for name in meta.colnames:
        if name not in table.colnames:
            table[name] = meta[name]
    return table
