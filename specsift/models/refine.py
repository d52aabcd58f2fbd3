"""Per-object refinement of the fit: a few Gauss-Newton steps on the latents and a redshift offset.

Why: the encoder is amortised. One network maps every spectrum to its latents, and at high S/N
the latents it gives are measurably off the best ones the decoder can use (the amortisation gap).
A bright normal galaxy then leaves residuals that look like an anomaly. The catalogue redshift
also carries errors of 10-25 km/s (a Redrock ZERR), which leave residuals at strong lines.
:func:`refine_fit` minimises each object's chi-square over its S latents and a velocity offset
``dv`` (Gaussian prior of width ``velocity_prior`` km/s). The decoder stays fixed. The latent
density of the paper (``LOGP``) keeps using the encoder's latents; only the reconstruction, and so
the residual evidence, uses the refined fit.

Each step linearises the decoder with S+1 forward-mode derivatives (``torch.func.jvp``, one
batch at a time: objects are independent). It then solves the damped normal equations
(Levenberg-Marquardt) and keeps an object's step only where its chi-square went down.
"""

from __future__ import annotations

import torch

__all__ = ["refine_fit", "C_KMS", "VELOCITY_PRIOR_KMS", "REFINE_STEPS"]

C_KMS = 299792.458
VELOCITY_PRIOR_KMS = 30.0     # prior width of the redshift offset: a few Redrock ZERRs
REFINE_STEPS = 3              # Gauss-Newton steps of a new model's catalogue fit


def _objective(flux, weight, model, velocity, prior):
    return (weight * (flux - model).square()).sum(-1) + (velocity / prior).square()


@torch.no_grad()
def refine_fit(autoencoder, latents: torch.Tensor, flux: torch.Tensor, weight: torch.Tensor,
               z: torch.Tensor, steps: int = REFINE_STEPS, velocity_prior: float = VELOCITY_PRIOR_KMS,
               damping: float = 1e-3):
    """Refine ``(B, S)`` latents and fit a velocity offset per object.

    Arguments:
        autoencoder: a :class:`~specsift.models.autoencoder.SpectrumAutoencoder`.
        latents: (B, S) starting latents (the encoder's).
        flux, weight: (B, P) cleaned flux and weight (ivar; 0 where masked or uncovered).
        z: (B,) catalogue redshift.
        steps: Gauss-Newton steps (0 returns the start).
        velocity_prior: prior width of the offset, km/s (0 fixes the redshift).
        damping: Levenberg-Marquardt damping, relative to the diagonal of the normal matrix.

    Returns:
        ``(latents, velocity, rest, model, covered)``: refined (B, S) latents, (B,) offset in
        km/s, (B, R) rest-frame and (B, P) observed models and (B, P) coverage of the final fit.
    """
    n_latent = latents.shape[1]
    free = n_latent + (1 if velocity_prior > 0 else 0)
    prior = torch.as_tensor(velocity_prior if velocity_prior > 0 else 1.0, dtype=torch.float32)

    def observed(params):
        velocity = params[:, n_latent] if velocity_prior > 0 else torch.zeros_like(z)
        zz = (1 + z.double()) * (1 + velocity.double() / C_KMS) - 1
        return autoencoder.observe(autoencoder.rest_model(params[:, :n_latent]), zz)

    params = torch.cat([latents.float(), torch.zeros_like(latents[:, :1])], 1)[:, :free]
    velocity_of = (lambda p: p[:, n_latent]) if velocity_prior > 0 \
        else (lambda p: torch.zeros_like(z, dtype=torch.float32))
    model, covered = observed(params)
    w = weight * covered
    current = _objective(flux, w, model, velocity_of(params), prior)
    eye = torch.eye(free, dtype=torch.float64, device=flux.device)
    for _ in range(steps):
        columns = []
        for k in range(free):
            tangent = torch.zeros_like(params)
            tangent[:, k] = 1.0
            columns.append(torch.func.jvp(lambda p: observed(p)[0], (params,), (tangent,))[1])
        jac = torch.stack(columns, -1).double()                       # (B, P, free)
        wj = w.double()[..., None] * jac
        normal = jac.transpose(1, 2) @ wj                            # (B, free, free)
        gradient = (wj * (flux - model).double()[..., None]).sum(1)  # (B, free)
        if velocity_prior > 0:
            normal[:, n_latent, n_latent] += 1.0 / float(prior) ** 2
            gradient[:, n_latent] -= params[:, n_latent].double() / float(prior) ** 2
        diag = torch.diagonal(normal, dim1=1, dim2=2)
        normal = normal + damping * torch.diag_embed(diag) + 1e-9 * eye
        delta = torch.linalg.solve(normal, gradient[..., None])[..., 0].float()
        trial = params + torch.nan_to_num(delta)
        trial_model, trial_covered = observed(trial)
        trial_w = weight * trial_covered
        value = _objective(flux, trial_w, trial_model, velocity_of(trial), prior)
        better = value < current
        params = torch.where(better[:, None], trial, params)
        model = torch.where(better[:, None], trial_model, model)
        covered = torch.where(better[:, None], trial_covered, covered)
        w = torch.where(better[:, None], trial_w, w)
        current = torch.where(better, value, current)
    rest = autoencoder.rest_model(params[:, :n_latent])
    return params[:, :n_latent], velocity_of(params), rest, model, covered
