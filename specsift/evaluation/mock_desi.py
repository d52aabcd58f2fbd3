"""A catalogue against the truth file of a mock DESI survey (``truth.fits``, evaluation only).

The truth says, per TARGETID, which sample the mock drew the object for (``BGS`` or ``MWS``)
and which anomaly family, if any, it injected. From it: the outlier ranking of the galaxy
sample (ROC AUC of injected anomalies against normal BGS galaxies, and the fraction of
anomalies at the top of the ranking), and the star/galaxy accuracy on the clean objects
(normal BGS galaxies must be called galaxies, MWS stars stars).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime import DEFAULT_DEVICE
from .metrics import roc_auc, top_count_precision, top_fraction_precision

__all__ = ["CatalogTruth", "match_truth", "outlier_metrics", "star_galaxy_metrics",
           "normal_validation_chi2"]


@dataclass
class CatalogTruth:
    """The truth of each catalogue row (catalogue order)."""

    sample: np.ndarray          # "BGS" / "MWS"
    family: np.ndarray          # anomaly family, "" for a normal object
    outlier: np.ndarray         # bool: an injected anomaly
    n_truth_not_in_catalog: int
    n_anomalies_not_in_catalog: int

    @property
    def bgs(self) -> np.ndarray:
        return self.sample == "BGS"

    @property
    def clean_galaxies(self) -> np.ndarray:
        return self.bgs & ~self.outlier

    @property
    def stars(self) -> np.ndarray:
        return self.sample == "MWS"


def match_truth(table, truth_path: str | Path) -> CatalogTruth:
    """The truth of the rows of catalogue ``table``, matched on TARGETID."""
    from astropy.io import fits

    truth = fits.getdata(truth_path, "TRUTH")
    ids = np.asarray(truth["TARGETID"]).astype(np.int64)
    order = {int(t): i for i, t in enumerate(ids)}
    try:
        index = np.array([order[int(t)] for t in table["TARGETID"]], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"catalogue object {error} is not in {truth_path}: another mock?") \
            from None
    missing = ~np.isin(ids, np.asarray(table["TARGETID"]).astype(np.int64))
    return CatalogTruth(
        sample=np.char.strip(np.asarray(truth["SAMPLE"])[index].astype(str)),
        family=np.char.strip(np.asarray(truth["ANOMALY"])[index].astype(str)),
        outlier=np.asarray(truth["IS_OUTLIER"], bool)[index],
        n_truth_not_in_catalog=int(missing.sum()),
        n_anomalies_not_in_catalog=int((missing & np.asarray(truth["IS_OUTLIER"], bool)).sum()))


def outlier_metrics(table, truth: CatalogTruth, top: int = 20, fraction: float = 0.01) -> dict:
    """How the catalogue ranking (RANK; unscored objects last) finds the injected anomalies of
    the BGS sample: ROC AUC against normal BGS galaxies, overall and per family, and the
    fraction of anomalies among the ``fraction`` and the ``top`` first-ranked BGS objects."""
    score = -np.asarray(table["RANK"], float)
    bgs, outlier, family = truth.bgs, truth.outlier, truth.family
    n_bgs = int(bgs.sum())
    result = {"n_bgs": n_bgs, "n_anomalies": int(outlier[bgs].sum()),
              "auc": roc_auc(score[bgs], outlier[bgs]),
              "top_fraction": fraction,
              "n_top_fraction": max(1, int(round(fraction * n_bgs))),
              "top_fraction_anomaly_fraction": top_fraction_precision(score[bgs], outlier[bgs],
                                                                      fraction),
              "top": top, "top_anomaly_fraction": top_count_precision(score[bgs], outlier[bgs],
                                                                      top),
              "auc_per_family": {}}
    normal = truth.clean_galaxies
    for name in sorted(set(family[bgs & outlier])):
        chosen = normal | (family == name)
        result["auc_per_family"][name] = {"n": int((bgs & (family == name)).sum()),
                                          "auc": roc_auc(score[chosen], (family == name)[chosen])}
    return result


def star_galaxy_metrics(is_star: np.ndarray, truth: CatalogTruth) -> dict:
    """Star/galaxy calls on the clean objects: normal BGS galaxies and MWS stars."""
    is_star = np.asarray(is_star, bool)
    galaxies, stars = truth.clean_galaxies, truth.stars
    contaminant = truth.family == "star_contaminant"
    calls = np.concatenate([~is_star[galaxies], is_star[stars]])
    return {"accuracy": float(calls.mean()) if len(calls) else float("nan"),
            "n_galaxies": int(galaxies.sum()), "n_stars": int(stars.sum()),
            "galaxies_correct": float((~is_star[galaxies]).mean()) if galaxies.any()
            else float("nan"),
            "stars_correct": float(is_star[stars].mean()) if stars.any() else float("nan"),
            "star_contaminant_as_star": float(is_star[contaminant].mean())
            if contaminant.any() else float("nan")}


def normal_validation_chi2(model_dir, store_dir, truth_path, device: str = DEFAULT_DEVICE) -> dict:
    """Pooled reduced chi2 of a model on its store's validation split, over the objects the
    truth calls normal (not injected anomalies), beside the median over all of them.

    Why beside the training log's figure: the mock injects anomalies into the validation split
    too, and one bright anomaly (reduced chi2 ~900) moves a pooled chi2 over 450 objects by 2.
    """
    from ..models.inference import encode_batches
    from ..models.modeldir import ModelDir
    from ..store import SpectraStore

    store = SpectraStore(store_dir)
    autoencoder = ModelDir(model_dir).load_autoencoder(device=device)
    ids = np.asarray(store.meta["TARGETID"]).astype(np.int64)
    from astropy.io import fits

    truth = fits.getdata(truth_path, "TRUTH")
    anomalous = set(np.asarray(truth["TARGETID"]).astype(np.int64)[
        np.asarray(truth["IS_OUTLIER"], bool)].tolist())
    chi2, n_good, normal = [], [], []
    for batch in encode_batches(autoencoder, store, split="validation", device=device):
        ok = batch["flag"] == 0
        chi2.append(batch["chi2"][ok])
        n_good.append(batch["n_good"][ok])
        normal.append(np.array([i not in anomalous for i in ids[batch["row"][ok]]], bool))
    chi2, n_good, normal = (np.concatenate(a) for a in (chi2, n_good, normal))
    if not normal.any():
        return {"val_reduced_chi2_normal": float("nan"), "n_normal": 0}
    return {"val_reduced_chi2_normal": float((chi2 * n_good)[normal].sum() / n_good[normal].sum()),
            "val_median_reduced_chi2": float(np.median(chi2)), "n_normal": int(normal.sum()),
            "n_validation": int(len(chi2))}
