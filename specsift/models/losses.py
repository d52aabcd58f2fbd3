"""Training losses: fidelity (eq. 1 of Liang et al. 2023), similarity and consistency.

The similarity and consistency losses compare *normalised* latent distances (divided by the
batch's mean pairwise latent distance), so they are invariant to a global rescaling of the
latents: the encoder cannot lower them by shrinking the latent space. Pairwise distances come
from ``|a|^2 + |b|^2 - 2 a.b`` (one matmul), so memory is O(B^2), never O(B^2 x pixels).

References:
    | Autoencoding Galaxy Spectra II: Redshift Invariance and Outlier Detection (Liang et al., 2023)
    | https://arxiv.org/abs/2302.02496
"""

from __future__ import annotations

import torch

__all__ = ["chi2_terms", "fidelity_loss", "pairwise_sq_distances", "similarity_loss",
           "consistency_loss"]


def chi2_terms(flux: torch.Tensor, weight: torch.Tensor, model: torch.Tensor):
    """Per object ``(sum_j w_j r_j^2, n_good)``: the chi-square and its number of valid pixels.

    ``weight`` must already be 0 on masked / uncovered pixels; flux there may be anything finite.
    The reduced chi-square of an object is ``chi2 / n_good``.
    """
    residual = torch.where(weight > 0, flux - model, torch.zeros_like(model))
    return (weight * residual.square()).sum(-1), (weight > 0).sum(-1)


def fidelity_loss(flux: torch.Tensor, weight: torch.Tensor, model: torch.Tensor,
                  valid: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (1) of Liang et al. (2023): ``1/2 w (x - model)^2`` averaged over all P pixels and objects.

    Dividing by all pixels (masked ones included), as the paper does, lets objects with more valid
    pixels weigh more; a perfect model with correct noise gives ``0.5 * n_good / P`` per object.
    ``valid`` (B,) bool excludes flagged objects; with no valid object the loss is 0, not NaN.
    """
    chi2, _ = chi2_terms(flux, weight, model)
    per_object = 0.5 * chi2 / flux.shape[-1]
    if valid is None:
        return per_object.mean()
    return (per_object * valid).sum() / valid.sum().clamp_min(1)


def pairwise_sq_distances(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D) -> (B, B) squared Euclidean distances (optionally weighted per feature), via matmul."""
    x = x.float()
    x = x - x.mean(0)  # distances are shift invariant; centring limits float32 cancellation
    if weight is not None:
        x = x * weight.float().sqrt()
    sq = x.square().sum(-1)
    return (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)


def _off_diagonal(b: int, valid: torch.Tensor | None, device) -> torch.Tensor:
    pairs = ~torch.eye(b, dtype=torch.bool, device=device)
    if valid is not None:
        pairs = pairs & valid[:, None] & valid[None, :]
    return pairs


def similarity_loss(latents: torch.Tensor, rest_models: torch.Tensor, delta: float = 0.5,
                    valid: torch.Tensor | None = None) -> torch.Tensor:
    """Make latent distances follow the distances between the rest-frame models.

    Both distance matrices are divided by their mean over distinct pairs, so only relative
    distances matter (scale invariant in the latents and in the spectra). The mismatch ``x``
    of each pair is penalised with the robust Cauchy function ``log(1 + (x/delta)^2)`` so that a few
    very different pairs (anomalies) cannot dominate. The model distances are the target and
    carry no gradient: the decoder is trained by the fidelity loss alone.
    """
    pairs = _off_diagonal(latents.shape[0], valid, latents.device)
    if pairs.sum() == 0:
        return latents.sum() * 0.0
    d_latent = pairwise_sq_distances(latents)
    d_model = pairwise_sq_distances(rest_models.detach())
    d_latent = d_latent / d_latent[pairs].mean().clamp_min(1e-12)
    d_model = d_model / d_model[pairs].mean().clamp_min(1e-12)
    mismatch = (d_latent - d_model)[pairs] / delta
    return torch.log1p(mismatch.square()).mean()


def consistency_loss(latents: torch.Tensor, latents_aug: torch.Tensor,
                     valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared distance between each object and its augmented copy, in units of the batch's
    mean squared pairwise latent distance (scale invariant; the inverse square of the
    redshift-invariance ratio, roughly).
    """
    pairs = _off_diagonal(latents.shape[0], valid, latents.device)
    if pairs.sum() == 0:
        return latents.sum() * 0.0
    scale = pairwise_sq_distances(latents)[pairs].mean().clamp_min(1e-12)
    shift = (latents.float() - latents_aug.float()).square().sum(-1)
    if valid is not None:
        shift = shift[valid]
    return shift.mean() / scale
