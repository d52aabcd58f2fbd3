"""Learn, once per galaxy model, what its outlier tests need: the model uncertainty, the usual
share of missing pixels, and the validation split's scores that turn a score into a p-value.

Why a separate pass after the flow: the latent test needs the flow, and the p-values need the
complete score, so the validation objects are scored exactly as the catalogue will score them.
The result is stored in the model directory (``outlier.safetensors``, sha256 recorded) by
:func:`save_calibration` and read back by :func:`load_calibration`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..models.defaults import INFERENCE_BATCH
from ..runtime import DEFAULT_DEVICE
from .evidence import (Evidence, ModelErrorFit, OutlierCalibration, log_snr, segments_for,
                       test_scales)

__all__ = ["calibrate_outliers", "save_calibration", "load_calibration", "evidence_for",
           "OUTLIER_WEIGHTS"]

logger = logging.getLogger("specsift.catalog")

OUTLIER_WEIGHTS = "outlier"


def _usable(autoencoder) -> np.ndarray:
    return ~autoencoder.fixed_mask.detach().cpu().numpy()


def _rest_range(autoencoder) -> tuple[float, float]:
    wave = autoencoder.rest_wave.detach().cpu().numpy()
    return float(wave[0]), float(wave[-1])


def evidence_for(autoencoder, calibration: OutlierCalibration) -> Evidence:
    """The :class:`~specsift.catalog.evidence.Evidence` of one autoencoder's outlier tests."""
    return Evidence(calibration, autoencoder.wave_obs.detach().cpu().numpy(), _usable(autoencoder),
                    _rest_range(autoencoder))


def calibrate_outliers(autoencoder, flow, store, batch_size: int = INFERENCE_BATCH,
                       device=DEFAULT_DEVICE,
                       max_objects: int = 6000, seed: int = 0,
                       refine_steps: int | None = None) -> OutlierCalibration:
    """Fit the model uncertainty on (up to ``max_objects``) training objects, then score the
    validation split for the reference distribution of ``OUTLIER_SCORE``; both with the refined
    per-object fit of ``refine_steps`` steps (default
    :data:`~specsift.models.refine.REFINE_STEPS`), which the catalogue then repeats."""
    from ..models.inference import encode_batches
    from ..models.refine import REFINE_STEPS

    steps = REFINE_STEPS if refine_steps is None else int(refine_steps)

    split = np.asarray(store.meta["SPLIT"])
    train = np.flatnonzero(split == "train")
    rng = np.random.default_rng(seed)
    if len(train) > max_objects:
        train = np.sort(rng.choice(train, max_objects, replace=False))
    wave = autoencoder.wave_obs.detach().cpu().numpy()
    fit = ModelErrorFit(wave, _rest_range(autoencoder),
                        segments_for(wave, getattr(store, "survey", "")), _usable(autoencoder),
                        max_objects=max_objects)
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, rows=train,
                                device=device, return_model=True, return_input=True,
                                refine_steps=steps):
        fit.update(batch["flux"], batch["weight"], batch["model"], batch["z"], batch["flag"] == 0)
    calibration = fit.calibration(refine_steps=steps)
    logger.info("model uncertainty from %d training objects: median %.3f, 99th percentile %.3f "
                "of the model flux", fit.n_objects(), float(np.median(calibration.model_error)),
                float(np.quantile(calibration.model_error, 0.99)))
    evidence = evidence_for(autoencoder, calibration)
    raw, base, snr = [], [], []
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, rows=train,
                                device=device, return_model=True, return_input=True,
                                refine_steps=steps):
        ok = batch["flag"] == 0
        if ok.any():
            base.append(flow.base_coordinates(batch["latents"][ok]))
            raw.append(evidence.raw_log10_tests(
                *(batch[k][ok] for k in ("flux", "weight", "model", "z")), base[-1])[0])
            snr.append(log_snr(batch["weight"][ok], batch["model"][ok]))
    if raw:
        raw, snr = np.concatenate(raw), np.concatenate(snr)
        calibration.test_scale = test_scales(raw)
        tempered = calibration.test_scale > 1
        logger.info("%d of %d tests tempered (their null is heavier than chi-square on training "
                    "galaxies); largest: %s x%.1f", int(tempered.sum()), len(tempered),
                    evidence.labels[int(np.argmax(calibration.test_scale))],
                    float(calibration.test_scale.max()))
        calibration.snr_standard = np.array([snr.mean(), max(float(snr.std()), 1e-3)])
        calibration.neighbour_features = evidence.features(np.concatenate(base), snr)
        calibration.neighbour_significance = (-raw).astype(np.float32)
    scores = []
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, split="validation",
                                device=device, return_model=True, return_input=True,
                                refine_steps=steps):
        ok = batch["flag"] == 0
        if not ok.any():
            continue
        tests = evidence.log10_tests(*(batch[k][ok] for k in ("flux", "weight", "model", "z")),
                                     flow.base_coordinates(batch["latents"][ok]))
        scores.append(evidence.score(tests)[0])
    calibration.reference_scores = np.sort(np.concatenate(scores)) if scores else np.zeros(0)
    logger.info("reference OUTLIER_SCORE of %d validation objects: median %.2f, 99th percentile "
                "%.2f", len(calibration.reference_scores),
                *(np.quantile(calibration.reference_scores, [0.5, 0.99])
                  if len(calibration.reference_scores) else (np.nan, np.nan)))
    return calibration


def save_calibration(model_dir, calibration: OutlierCalibration) -> None:
    """Store the calibration beside the autoencoder (safetensors + sha256 in config.json)."""
    tensors = {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float64)
               for k, v in calibration.tensors().items()}
    model_dir.save_weights(OUTLIER_WEIGHTS, tensors, extra_config={"outlier": {
        "segments": [list(s) for s in calibration.segments],
        "refine_steps": int(calibration.refine_steps)}})


def load_calibration(model_dir) -> OutlierCalibration | None:
    """The stored calibration, or None for a model directory written before it existed."""
    if not model_dir.has_weights(OUTLIER_WEIGHTS):
        return None
    state = {k: v.numpy() for k, v in model_dir.load_weights(OUTLIER_WEIGHTS).items()}
    config = model_dir.config["outlier"]
    segments = [(str(n), float(lo), float(hi)) for n, lo, hi in config["segments"]]
    return OutlierCalibration(state["error_edges"], state["model_error"], segments,
                              state["missing_reference"], state["reference_scores"],
                              int(config.get("refine_steps", 0)),
                              **{name: state.get(name) for name in OutlierCalibration._OPTIONAL})
