"""Encode a store in batches: latents, reconstruction chi-square and flags for every object.

Scoring, flow training, evaluation and the ``encode`` verb all go through :func:`encode_batches`,
so every consumer sees the same cleaning rules and the same flags (:mod:`specsift.models.inputs`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import SpecsiftInputError
from ..runtime import DEFAULT_DEVICE, resolve_device
from .defaults import INFERENCE_BATCH
from .inputs import clean_batch
from .losses import chi2_terms
from .refine import refine_fit

__all__ = ["encode_batches", "check_grid", "REFINE_ABOVE", "REFINE_BELOW"]

REFINE_ABOVE = 3.0   # refine fits whose reduced chi2 is this many sigma above 1 ...
REFINE_BELOW = 5.0   # ... and below this: a worse fit is a misfit, not an amortisation gap


def check_grid(autoencoder, store) -> None:
    """Refuse a store whose wavelength grid is not the one the model was trained on."""
    wave = np.asarray(store.wave, dtype=np.float64)
    model_wave = autoencoder.wave_obs.detach().cpu().numpy()
    if wave.shape != model_wave.shape or not np.allclose(wave, model_wave, rtol=0, atol=1e-3):
        raise SpecsiftInputError(
            f"the store's wavelength grid ({len(wave)} pixels, {wave[0]:.1f}-{wave[-1]:.1f} A) is not "
            f"the model's ({len(model_wave)} pixels, {model_wave[0]:.1f}-{model_wave[-1]:.1f} A): "
            "the model was trained on another survey or arm set", path=getattr(store, "path", None))


def _reduced_chi2(flux, weight, model):
    """(B,) reduced chi-square (NaN without valid pixels) and (B,) valid pixels."""
    chi2, n_good = chi2_terms(flux, weight, model)
    return torch.where(n_good > 0, chi2 / n_good.clamp_min(1), torch.full_like(chi2, np.nan)), n_good


def _refined(autoencoder, latents, flux, ivar, z, rest, model, covered, reduced, n_good, steps):
    """Refine the fits that are not at noise level already:
    ``(rest, model, covered, velocity, dispersion)``.

    Why only those: an object whose encoder fit leaves a reduced chi-square within
    ``REFINE_ABOVE`` standard deviations of 1 (``sqrt(2 / n)``) has nothing to gain, and most
    faint spectra are such. A fit ``REFINE_BELOW`` times worse than the noise is not an
    amortisation gap but a spectrum the galaxy model cannot describe (a star, a quasar): refining
    it costs time and would only hide part of what makes it unusual.
    """
    weight = autoencoder.weights(ivar)
    n = n_good.clamp_min(1).to(reduced.dtype)
    todo = torch.nonzero((n_good > 0) & (reduced > 1 + REFINE_ABOVE * torch.sqrt(2 / n))
                         & (reduced < REFINE_BELOW))[:, 0]
    velocity = torch.zeros(len(z), dtype=torch.float32, device=flux.device)
    dispersion = torch.zeros_like(velocity)
    if len(todo):
        fit = refine_fit(autoencoder, latents[todo], flux[todo], weight[todo], z[todo],
                         steps=steps)
        rest, model, covered = rest.clone(), model.clone(), covered.clone()
        rest[todo], model[todo], covered[todo] = fit.rest.to(rest.dtype), fit.model, fit.covered
        velocity[todo], dispersion[todo] = fit.velocity, fit.dispersion
    return rest, model, covered, velocity, dispersion


@torch.no_grad()
def encode_batches(autoencoder, store, batch_size: int = INFERENCE_BATCH, rows=None,
                   split: str | None = None,
                   device: str | torch.device = DEFAULT_DEVICE, return_model: bool = False,
                   return_rest: bool = False,
                   return_input: bool = False,
                   refine_steps: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Stream ``store`` (one split, a subset of rows, or all) through the autoencoder.

    Yields dicts of numpy arrays: ``row`` (B,) store rows, ``latents`` (B, S), ``chi2`` (B,)
    reduced chi-square of the reconstruction over valid pixels (NaN when there are none),
    ``n_good`` (B,) valid pixels, ``flag`` (B,) bit flags (0 = fine; see
    :mod:`specsift.models.inputs`), and ``model`` (B, P) / ``rest`` (B, R) if requested;
    ``return_input`` adds the cleaned ``flux``, its ``weight`` (ivar, 0 where the model does not
    cover a pixel or there is no data) and ``z`` (B,) as the model saw them.
    The model is moved to ``device`` and put in eval mode.
    """
    check_grid(autoencoder, store)
    device = resolve_device(device)
    autoencoder = autoencoder.to(device).eval()
    for batch in store.batches(batch_size=batch_size, split=split, rows=rows):
        flux = torch.as_tensor(batch["flux"], device=device)
        ivar = torch.as_tensor(batch["ivar"], device=device)
        z = torch.as_tensor(batch["z"], device=device, dtype=torch.float32)
        flux, ivar, z, flag = clean_batch(flux, ivar, z, autoencoder.z_min, autoencoder.z_max)
        latents, rest, model, covered = autoencoder(flux, ivar, z)
        out = {"row": np.asarray(batch["row"]), "latents": latents.float().cpu().numpy(),
               "flag": flag.cpu().numpy()}
        if refine_steps:
            encoder_chi2, encoder_n = _reduced_chi2(flux, autoencoder.weights(ivar) * covered,
                                                    model)
            out["chi2_encoder"] = encoder_chi2.cpu().numpy()
            rest, model, covered, velocity, dispersion = _refined(
                autoencoder, latents, flux, ivar, z, rest, model, covered, encoder_chi2,
                encoder_n, refine_steps)
            out.update(velocity=velocity.cpu().numpy(), dispersion=dispersion.cpu().numpy())
        weight = autoencoder.weights(ivar) * covered
        reduced, n_good = _reduced_chi2(flux, weight, model)
        out.update(chi2=reduced.cpu().numpy(), n_good=n_good.cpu().numpy())
        if return_model:
            out["model"] = model.cpu().numpy()
        if return_rest:
            out["rest"] = rest.float().cpu().numpy()
        if return_input:
            out.update(flux=flux.cpu().numpy(), weight=weight.cpu().numpy(), z=z.cpu().numpy())
        yield out
