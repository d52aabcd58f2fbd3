"""How good is a trained autoencoder: fidelity per split and redshift invariance of its latents.

Definitions (Liang et al. 2023): the fidelity loss is eq. (1), ``1/2 sum w r^2 / P`` averaged over
objects; the reduced chi-square is ``sum w r^2 / sum n_good`` pooled over the split's objects (1
for a perfect model with correct errors); the invariance ratio is the mean latent distance between
random pairs of objects over the mean distance between each object and a copy of it moved to
another redshift (the paper reaches 21).
"""

from __future__ import annotations

import numpy as np
import torch

from ..preprocess.split import SPLITS
from ..runtime import DEFAULT_DEVICE, resolve_device
from .augment import redshift_copy
from .defaults import INFERENCE_BATCH, INVARIANCE_OBJECTS
from .inference import check_grid, encode_batches
from .inputs import clean_batch

__all__ = ["split_metrics", "invariance_ratio", "chi2_by_snr", "evaluate"]


def split_metrics(autoencoder, store, batch_size: int = INFERENCE_BATCH,
                  device=DEFAULT_DEVICE) -> dict:
    """Fidelity loss and reduced chi-square of each split, over unflagged objects, in one pass."""
    n_pix = len(store.wave)
    sums = {s: np.zeros(4) for s in SPLITS}  # fidelity sum, chi2 sum, n_good sum, objects
    chi2_all = {s: [] for s in SPLITS}
    flagged = {s: 0 for s in SPLITS}
    split_of = np.asarray(store.meta["SPLIT"])
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, device=device):
        ok = batch["flag"] == 0
        chi2_sum = np.where(ok, batch["chi2"] * batch["n_good"], 0.0)
        splits = split_of[batch["row"]]
        for s in SPLITS:
            sel = splits == s
            flagged[s] += int((sel & ~ok).sum())
            sel &= ok
            sums[s] += [0.5 * chi2_sum[sel].sum() / n_pix, chi2_sum[sel].sum(),
                        batch["n_good"][sel].sum(), sel.sum()]
            chi2_all[s].append(batch["chi2"][sel])
    result = {}
    for s in SPLITS:
        fid, chi2, n_good, n = sums[s]
        if n == 0:
            continue
        result[s] = {"fidelity_loss": fid / n, "reduced_chi2": chi2 / max(n_good, 1),
                     "reduced_chi2_median": float(np.median(np.concatenate(chi2_all[s]))),
                     "n_objects": int(n), "n_flagged": flagged[s]}
    return result


@torch.no_grad()
def invariance_ratio(autoencoder, store, split: str = "validation",
                     max_objects: int = INVARIANCE_OBJECTS,
                     max_shift: float = 0.2, noise: float = 0.0, seed: int = 0,
                     batch_size: int = INFERENCE_BATCH, device=DEFAULT_DEVICE) -> dict:
    """Mean random-pair latent distance / mean object-to-redshifted-copy distance.

    The copies come from :func:`~specsift.models.augment.redshift_copy` (``noise=0``: the redshift
    change alone, as in the paper's definition); flagged objects are left out.
    """
    check_grid(autoencoder, store)
    device = resolve_device(device)
    autoencoder = autoencoder.to(device).eval()
    rows = np.flatnonzero(np.asarray(store.meta["SPLIT"]) == split)
    rng = np.random.default_rng(seed)
    if len(rows) > max_objects:
        rows = np.sort(rng.choice(rows, max_objects, replace=False))
    generator = torch.Generator(device=device).manual_seed(seed)
    wave = autoencoder.wave_obs
    original, shifted = [], []
    for batch in store.batches(batch_size=batch_size, rows=rows):
        flux, ivar, z, flag = clean_batch(
            *(torch.as_tensor(batch[k], device=device) for k in ("flux", "ivar", "z")),
            autoencoder.z_min, autoencoder.z_max)
        ok = flag == 0
        copy = redshift_copy(flux, ivar, z, wave, autoencoder.z_min, autoencoder.z_max, generator,
                             max_shift, noise)
        original.append(autoencoder.encode(flux, ivar, z)[ok].float().cpu())
        shifted.append(autoencoder.encode(*copy)[ok].float().cpu())
    s, s_copy = torch.cat(original), torch.cat(shifted)
    if len(s) < 2:
        return {"invariance_ratio": float("nan"), "n_objects": len(s)}
    partner = torch.as_tensor(rng.permutation(len(s)))
    partner = torch.where(partner == torch.arange(len(s)), (partner + 1) % len(s), partner)
    pair = (s - s[partner]).norm(dim=1).mean()
    copy = (s - s_copy).norm(dim=1).mean()
    return {"invariance_ratio": float(pair / copy), "pair_distance": float(pair),
            "copy_distance": float(copy), "n_objects": len(s), "split": split}


def chi2_by_snr(autoencoder, store, split: str = "validation", refine_steps: int = 0,
                brightest: float = 0.02, batch_size: int = INFERENCE_BATCH,
                device=DEFAULT_DEVICE) -> dict:
    """Median reduced chi-square of ``split``'s unflagged objects in S/N terciles and in the
    ``brightest`` fraction.

    Why: a model error that is a fixed fraction of the flux hides below the noise of faint
    spectra and dominates bright ones, so a pooled chi-square near 1 can still hide a model that
    fails at high S/N. S/N is the store's ``SNR``, the median of ``flux * sqrt(ivar)`` over the
    valid pixels.
    ``refine_steps`` > 0 measures the refined fit the catalogue uses.
    """
    rows = np.flatnonzero(np.asarray(store.meta["SPLIT"]) == split)
    store_snr = np.asarray(store.meta["SNR"], dtype=np.float64)
    chi2, snr = [], []
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, rows=rows,
                                device=device, refine_steps=refine_steps):
        ok = batch["flag"] == 0
        chi2.append(batch["chi2"][ok])
        snr.append(store_snr[batch["row"][ok]])
    chi2, snr = np.concatenate(chi2), np.concatenate(snr)
    if not len(chi2):
        return {"n_objects": 0}
    order = np.argsort(snr, kind="stable")
    result = {"n_objects": int(len(chi2)), "refine_steps": int(refine_steps)}
    for name, part in zip(("low", "middle", "high"), np.array_split(order, 3)):
        result[f"{name}_snr_tercile"] = {"median_reduced_chi2": float(np.median(chi2[part])),
                                         "median_snr": float(np.median(snr[part]))}
    top = order[-max(1, int(round(brightest * len(order)))):]
    result["brightest"] = {"fraction": brightest, "n_objects": int(len(top)),
                           "median_reduced_chi2": float(np.median(chi2[top])),
                           "median_snr": float(np.median(snr[top]))}
    return result


def evaluate(autoencoder, store, batch_size: int = INFERENCE_BATCH, device=DEFAULT_DEVICE,
             max_objects: int = INVARIANCE_OBJECTS, seed: int = 0, refine_steps: int = 0) -> dict:
    """The ``evaluate-ae`` report: ``splits`` -> metrics, ``invariance_ratio`` and its details,
    ``chi2_by_snr`` of the validation split (the encoder's fit, and the refined fit when
    ``refine_steps`` > 0)."""
    invariance = invariance_ratio(autoencoder, store, max_objects=max_objects, seed=seed,
                                  batch_size=batch_size, device=device)
    by_snr = {"encoder": chi2_by_snr(autoencoder, store, batch_size=batch_size, device=device)}
    if refine_steps:
        by_snr["refined"] = chi2_by_snr(autoencoder, store, refine_steps=refine_steps,
                                        batch_size=batch_size, device=device)
    return {"splits": split_metrics(autoencoder, store, batch_size, device),
            "invariance_ratio": invariance.pop("invariance_ratio"), "invariance": invariance,
            "chi2_by_snr": by_snr}
