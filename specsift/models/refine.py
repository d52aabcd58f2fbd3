"""Per-object refinement of the fit: a few Gauss-Newton steps on the latents and a redshift offset.

Why: the encoder is amortised. One network maps every spectrum to its latents, and at high S/N
the latents it gives are measurably off the best ones the decoder can use (the amortisation gap).
A bright normal galaxy then leaves residuals that look like an anomaly. The catalogue redshift
also carries errors of 10-25 km/s (a Redrock ZERR), which leave residuals at strong lines.
:func:`refine_fit` minimises each object's chi-square over its S latents and a velocity offset
``dv`` (Gaussian prior of width ``velocity_prior`` km/s). The decoder stays fixed. The latent
density of the paper (``LOGP``) keeps using the encoder's latents; only the reconstruction, and so
the residual evidence, uses the refined fit.

Each step linearises the decoder and the redshift step (:class:`_Observation`). It then solves
the damped normal equations
(Levenberg-Marquardt) and keeps an object's step only where its chi-square went down; a rejected
step is retried with more damping, so a step is never worse than the start.
"""

from __future__ import annotations

import torch

from .resample import interp_uniform, rest_positions

__all__ = ["refine_fit", "C_KMS", "VELOCITY_PRIOR_KMS", "REFINE_STEPS"]

C_KMS = 299792.458
VELOCITY_PRIOR_KMS = 30.0     # prior width of the redshift offset: a few Redrock ZERRs
REFINE_STEPS = 3              # Gauss-Newton steps of a new model's catalogue fit


def _objective(flux, weight, model, velocity, prior):
    return (weight * (flux - model).square()).sum(-1) + (velocity / prior).square()


class _Observation:
    """The decoder followed by the redshift step, with its Jacobian, for one batch.

    Why by hand: the redshift step is linear in the rest-frame model, so the latent columns of the
    Jacobian are the decoder's forward-mode derivatives (one batched ``jvp`` for all S latents)
    pushed through the same interpolation, and the velocity column is the model's slope between
    the two rest pixels an observed pixel falls between.
    """

    def __init__(self, autoencoder, z: torch.Tensor):
        self.ae = autoencoder
        self.z = z.double()
        wave = autoencoder.rest_wave.double()
        self.first = float(wave[0])
        self.step = float((wave[-1] - wave[0]) / (wave.shape[0] - 1))

    def positions(self, velocity):
        zz = (1 + self.z) * (1 + velocity.double() / C_KMS) - 1
        return rest_positions(self.ae.rest_wave, self.ae.wave_obs, zz), zz

    def __call__(self, latents, velocity):
        """``(model, covered)`` on the observed grid."""
        return interp_uniform(self.positions(velocity)[0], self.ae.rest_model(latents).float())

    def linearise(self, latents, velocity, with_velocity: bool):
        """``(model, covered, jacobian)``; the Jacobian is (B, P, S [+ 1])."""
        rest, d_rest = self._rest_jacobian(latents)                  # (B, R), (B, R, S)
        position, zz = self.positions(velocity)
        n_rest = rest.shape[1]
        covered = (position >= 0) & (position <= n_rest - 1)
        lo = position.floor().clamp(0, n_rest - 2)
        t = (position - lo).float()
        lo = lo.long()
        y0, y1 = torch.gather(rest, 1, lo), torch.gather(rest, 1, lo + 1)
        model = torch.where(covered, y0 + t * (y1 - y0), 0.0)
        index = lo[..., None].expand(*lo.shape, d_rest.shape[2])
        j0, j1 = torch.gather(d_rest, 1, index), torch.gather(d_rest, 1, index + 1)
        columns = [torch.where(covered[..., None], j0 + t[..., None] * (j1 - j0), 0.0)]
        if with_velocity:
            # position = (lambda / (1 + zz) - first) / step, and d zz / d v = (1 + z) / c
            d_position = -(position + self.first / self.step) / (1 + zz[:, None]) \
                * ((1 + self.z) / C_KMS)[:, None]
            columns.append(torch.where(covered, (y1 - y0) * d_position.float(), 0.0)[..., None])
        return model, covered, torch.cat(columns, -1)

    def _rest_jacobian(self, latents):
        """Rest-frame model (B, R) and its derivative by the latents (B, R, S).

        An MLP decoder ends in a linear layer, so the derivative is that layer's weights times
        the small Jacobian of the hidden layers (forward-mode, S tangents at once); a decoder with
        a line-spread kernel goes through forward-mode derivatives of the whole decoder.
        """
        decoder = self.ae.decoder
        n = latents.shape[1]
        tangents = torch.eye(n, dtype=latents.dtype, device=latents.device)[:, None, :]
        tangents = tangents.expand(n, *latents.shape)
        if decoder.lsf is not None:
            d_rest = torch.func.vmap(
                lambda t: torch.func.jvp(decoder, (latents,), (t,))[1])(tangents)
            return decoder(latents).float(), d_rest.permute(1, 2, 0).float()
        hidden, last = decoder.mlp[:-1], decoder.mlp[-1]
        h = hidden(latents)
        d_h = torch.func.vmap(lambda t: torch.func.jvp(hidden, (latents,), (t,))[1])(tangents)
        rest = last(h).float()
        d_rest = torch.einsum("kbh,rh->brk", d_h, last.weight).float()
        return rest, d_rest


@torch.no_grad()
def refine_fit(autoencoder, latents: torch.Tensor, flux: torch.Tensor, weight: torch.Tensor,
               z: torch.Tensor, steps: int = REFINE_STEPS, velocity_prior: float = VELOCITY_PRIOR_KMS,
               damping: float = 1e-2):
    """Refine ``(B, S)`` latents and fit a velocity offset per object.

    Arguments:
        autoencoder: a :class:`~specsift.models.autoencoder.SpectrumAutoencoder`.
        latents: (B, S) starting latents (the encoder's).
        flux, weight: (B, P) cleaned flux and weight (ivar; 0 where masked or uncovered).
        z: (B,) catalogue redshift.
        steps: Gauss-Newton steps (0 returns the start).
        velocity_prior: prior width of the offset, km/s (0 fixes the redshift).
        damping: starting Levenberg-Marquardt damping, relative to the diagonal of the normal
            matrix; per object, it grows tenfold after a rejected step and shrinks after a kept one.

    Returns:
        ``(latents, velocity, rest, model, covered)``: refined (B, S) latents, (B,) offset in
        km/s, (B, R) rest-frame and (B, P) observed models and (B, P) coverage of the final fit.
    """
    n_latent = latents.shape[1]
    fit_velocity = velocity_prior > 0
    prior = float(velocity_prior) if fit_velocity else 1.0
    observe = _Observation(autoencoder, z)
    latents = latents.float()
    velocity = torch.zeros(len(z), dtype=torch.float32, device=latents.device)
    model, covered = observe(latents, velocity)
    current = _objective(flux, weight * covered, model, velocity, prior)
    free = n_latent + int(fit_velocity)
    eye = torch.eye(free, dtype=torch.float64, device=flux.device)
    lam = torch.full((len(z),), float(damping), dtype=torch.float64, device=flux.device)
    for _ in range(steps):
        model, covered, jac = observe.linearise(latents, velocity, fit_velocity)
        w = (weight * covered).double()
        wj = w[..., None] * jac.double()
        normal = jac.double().transpose(1, 2) @ wj                   # (B, free, free)
        gradient = (wj * (flux - model).double()[..., None]).sum(1)  # (B, free)
        if fit_velocity:
            normal[:, n_latent, n_latent] += 1.0 / prior ** 2
            gradient[:, n_latent] -= velocity.double() / prior ** 2
        diag = torch.diagonal(normal, dim1=1, dim2=2)
        normal = normal + lam[:, None, None] * torch.diag_embed(diag) + 1e-9 * eye
        delta = torch.nan_to_num(torch.linalg.solve(normal, gradient[..., None])[..., 0].float())
        trial_latents = latents + delta[:, :n_latent]
        trial_velocity = velocity + delta[:, n_latent] if fit_velocity else velocity
        trial_model, trial_covered = observe(trial_latents, trial_velocity)
        value = _objective(flux, weight * trial_covered, trial_model, trial_velocity, prior)
        better = value < current
        lam = torch.where(better, lam / 3, lam * 10)   # Levenberg-Marquardt: trust a good model
        latents = torch.where(better[:, None], trial_latents, latents)
        velocity = torch.where(better, trial_velocity, velocity)
        current = torch.where(better, value, current)
    rest = autoencoder.rest_model(latents)
    model, covered = interp_uniform(observe.positions(velocity)[0], rest.float())
    return latents, velocity, rest, model, covered
