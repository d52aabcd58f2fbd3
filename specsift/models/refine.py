"""Per-object refinement of the fit: a few Gauss-Newton steps on the latents and two nuisances.

Why: the encoder is amortised. One network maps every spectrum to its latents, and at high S/N
the latents it gives are measurably off the best ones the decoder can use (the amortisation gap).
A bright normal galaxy then leaves residuals that look like an anomaly. Two nuisances of every
spectrum are not in the S latents either:

- the catalogue redshift carries errors of 10-25 km/s (a Redrock ZERR), which leave residuals at
  strong lines: a velocity offset ``dv`` (km/s);
- the width of the lines: velocity dispersions differ between galaxies of otherwise alike
  spectra, and six latents decode one typical width per spectral type. At S/N 15 and above the
  mismatch dominates the residuals (measured on the shared mock: over half of the excess
  chi-square of the brightest validation galaxies lies within 25 A of H-alpha, in wings against
  cores). The nuisance ``ds2`` is the change of the squared dispersion, (km/s)^2, either sign,
  applied to the rest-frame model to first order: convolving with a Gaussian of variance
  ``(lambda/c)^2 ds2`` adds ``(lambda/c)^2 ds2 / 2`` times the model's second derivative.

:func:`refine_fit` minimises each object's chi-square over its S latents and the nuisances, each
with a Gaussian prior (``velocity_prior`` km/s; ``dispersion_prior`` km/s for ``sqrt|ds2|``). The
decoder stays fixed. The latent density of the paper (``LOGP``) keeps using the encoder's
latents; only the reconstruction, and so the residual evidence, uses the refined fit.

Each step linearises the decoder, the broadening and the redshift step (:class:`_Observation`).
It then solves the damped normal equations (Levenberg-Marquardt) and keeps an object's step only
where its chi-square went down; a rejected step is retried with more damping, so a step is never
worse than the start. An object whose last step gained less than ``CONVERGED_CHI2`` of reduced
chi-square stops there: a faint spectrum stops early, a bright one may use all ``REFINE_STEPS``,
and the cost follows the objects that still gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .resample import interp_uniform, rest_positions

__all__ = ["refine_fit", "RefinedFit", "C_KMS", "VELOCITY_PRIOR_KMS", "DISPERSION_PRIOR_KMS",
           "REFINE_STEPS", "CONVERGED_CHI2"]

C_KMS = 299792.458
VELOCITY_PRIOR_KMS = 30.0     # prior width of the redshift offset: a few Redrock ZERRs
DISPERSION_PRIOR_KMS = 100.0  # prior width of sqrt|ds2|: the spread of galaxies' line widths
REFINE_STEPS = 10             # most Gauss-Newton steps of a new model's catalogue fit
CONVERGED_CHI2 = 5e-4         # a step that gains less reduced chi-square ends an object's fit


@dataclass
class RefinedFit:
    """One batch's refined fit: (B, S) ``latents``, (B,) ``velocity`` (km/s) and ``dispersion``
    (``ds2``, (km/s)^2), and the (B, R) ``rest``, (B, P) ``model`` and ``covered`` it gives."""

    latents: torch.Tensor
    velocity: torch.Tensor
    dispersion: torch.Tensor
    rest: torch.Tensor
    model: torch.Tensor
    covered: torch.Tensor


def _second_difference(values: torch.Tensor) -> torch.Tensor:
    """Second difference along axis 1 (rest pixels); 0 at both ends."""
    out = torch.zeros_like(values)
    out[:, 1:-1] = values[:, :-2] - 2 * values[:, 1:-1] + values[:, 2:]
    return out


class _Observation:
    """The decoder, the broadening and the redshift step, with their Jacobian, for one batch.

    Why by hand: broadening and the redshift step are linear in the rest-frame model, so the
    latent columns of the Jacobian are the decoder's forward-mode derivatives (one batched
    ``jvp`` for all S latents) pushed through both; the velocity column is the model's slope
    between the two rest pixels an observed pixel falls between, and the dispersion column the
    broadening kernel applied to the model.
    """

    def __init__(self, autoencoder, z: torch.Tensor):
        self.ae = autoencoder
        self.z = z.double()
        wave = autoencoder.rest_wave.double()
        self.first = float(wave[0])
        self.step = float((wave[-1] - wave[0]) / (wave.shape[0] - 1))
        # model change per pixel's second difference and per (km/s)^2 of ds2
        self.curvature = (0.5 * (wave / C_KMS / self.step) ** 2).float()

    def broadening(self, rest: torch.Tensor) -> torch.Tensor:
        """(B, R) change of ``rest`` per (km/s)^2 of ``ds2``: d rest / d ds2."""
        return self.curvature * _second_difference(rest)

    def broaden(self, rest: torch.Tensor, dispersion: torch.Tensor) -> torch.Tensor:
        """(B, R) ``rest`` with its squared dispersion changed by (B,) ``dispersion``."""
        return rest + dispersion[:, None] * self.broadening(rest)

    def positions(self, velocity):
        zz = (1 + self.z) * (1 + velocity.double() / C_KMS) - 1
        return rest_positions(self.ae.rest_wave, self.ae.wave_obs, zz), zz

    def rest(self, latents, dispersion):
        return self.broaden(self.ae.rest_model(latents).float(), dispersion)

    def __call__(self, latents, velocity, dispersion):
        """``(model, covered)`` on the observed grid."""
        return interp_uniform(self.positions(velocity)[0], self.rest(latents, dispersion))

    def linearise(self, latents, velocity, dispersion, with_velocity: bool,
                  with_dispersion: bool):
        """``(model, covered, jacobian)``; the Jacobian is (B, S [+ 1] [+ 1], P): latents, then
        dispersion and velocity when they are fitted."""
        rest, d_rest = self._rest_jacobian(latents)                  # (B, R), (B, S, R)
        position, zz = self.positions(velocity)
        n_rest = rest.shape[1]
        covered = (position >= 0) & (position <= n_rest - 1)
        lo = position.floor().clamp(0, n_rest - 2)
        t = (position - lo).float()[:, None]
        lo = lo.long()[:, None]
        hi = lo + 1

        def observed(values):   # (B, K, R) rest-frame rows: (B, K, P) values and steps
            y0 = torch.gather(values, 2, lo.expand(-1, values.shape[1], -1))
            step = torch.gather(values, 2, hi.expand(-1, values.shape[1], -1)) - y0
            return torch.where(covered[:, None], y0 + t * step, 0.0), step

        columns = [observed(d_rest)[0]]
        if with_dispersion:
            # the latent columns leave out the broadening of the decoder's derivatives: ``ds2``
            # changes them by a few per cent, and a step is kept only if the exact chi-square
            # goes down, so the cheaper Jacobian costs no accuracy, only at most a step
            d_dispersion = self.broadening(rest)
            rest = rest + dispersion[:, None] * d_dispersion
            columns.append(observed(d_dispersion[:, None])[0])
        model, slope = observed(rest[:, None])
        if with_velocity:
            # position = (lambda / (1 + zz) - first) / step, and d zz / d v = (1 + z) / c
            d_position = -(position + self.first / self.step) / (1 + zz[:, None]) \
                * ((1 + self.z) / C_KMS)[:, None]
            columns.append(torch.where(covered, slope[:, 0] * d_position.float(), 0.0)[:, None])
        return model[:, 0], covered, torch.cat(columns, 1)

    def _rest_jacobian(self, latents):
        """Rest-frame model (B, R) and its derivative by the latents (B, S, R).

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
            return decoder(latents).float(), d_rest.transpose(0, 1).float()
        hidden, last = decoder.mlp[:-1], decoder.mlp[-1]
        h = hidden(latents)
        d_h = torch.func.vmap(lambda t: torch.func.jvp(hidden, (latents,), (t,))[1])(tangents)
        rest = last(h).float()
        # one (B S, H) x (H, R) product: as fast as BLAS goes, where the batched (B, S, H)
        # product runs 2-3x slower on CPU
        batch, n_hidden = latents.shape[0], d_h.shape[-1]
        d_rest = torch.nn.functional.linear(d_h.transpose(0, 1).reshape(batch * n, n_hidden),
                                            last.weight).view(batch, n, -1).float()   # (B, S, R)
        return rest, d_rest


def _normal_equations(observe, flux, weight, latents, nuisances, fit_velocity, fit_dispersion):
    """Gauss-Newton normal matrix (B, free, free) and gradient (B, free) of the chi-square, without
    the priors; the sums over pixels in float32 (relative error ~1e-6, and a step is kept only if
    the exact chi-square goes down), returned in float64 for the small solve."""
    dispersion, velocity = nuisances
    model, covered, jac = observe.linearise(latents, velocity, dispersion, fit_velocity,
                                            fit_dispersion)                 # jac: (B, free, P)
    wj = (weight * covered)[:, None] * jac
    normal = wj @ jac.transpose(1, 2)
    gradient = (wj @ (flux - model)[..., None])[..., 0]
    return normal.double(), gradient.double()


def _objective(flux, weight, model, nuisances, priors):
    penalty = sum(((value / prior).square() for value, prior in zip(nuisances, priors)),
                  torch.zeros_like(flux[:, 0]))
    return (weight * (flux - model).square()).sum(-1) + penalty


@torch.no_grad()
def refine_fit(autoencoder, latents: torch.Tensor, flux: torch.Tensor, weight: torch.Tensor,
               z: torch.Tensor, steps: int = REFINE_STEPS,
               velocity_prior: float = VELOCITY_PRIOR_KMS,
               dispersion_prior: float = DISPERSION_PRIOR_KMS, damping: float = 1e-2,
               tolerance: float = CONVERGED_CHI2) -> RefinedFit:
    """Refine ``(B, S)`` latents and fit a velocity offset and a dispersion change per object.

    Arguments:
        autoencoder: a :class:`~specsift.models.autoencoder.SpectrumAutoencoder`.
        latents: (B, S) starting latents (the encoder's).
        flux, weight: (B, P) cleaned flux and weight (ivar; 0 where masked or uncovered).
        z: (B,) catalogue redshift.
        steps: Gauss-Newton steps (0 returns the start).
        velocity_prior: prior width of the offset, km/s (0 fixes the redshift).
        dispersion_prior: prior width of the dispersion change, km/s: ``ds2`` has a Gaussian
            prior of width ``dispersion_prior ** 2`` (0 keeps the decoder's line widths).
        damping: starting Levenberg-Marquardt damping, relative to the diagonal of the normal
            matrix; per object, it grows tenfold after a rejected step and shrinks after a kept one.
        tolerance: an object stops once a step lowers its reduced chi-square by less than this.
    """
    n_latent, n = latents.shape[1], len(z)
    fit_velocity, fit_dispersion = velocity_prior > 0, dispersion_prior > 0
    priors = ([float(dispersion_prior) ** 2] * fit_dispersion
              + [float(velocity_prior)] * fit_velocity)
    latents = latents.float().clone()   # updated in place, object by object
    nuisances = torch.zeros(n, len(priors), dtype=torch.float32, device=latents.device)

    def split(values):        # (dispersion, velocity), 0 where not fitted
        columns, zero = iter(values.unbind(1)), values.new_zeros(len(values))
        dispersion = next(columns) if fit_dispersion else zero
        return dispersion, (next(columns) if fit_velocity else zero)

    def objective(observe, flux, weight, latents, nuisances):
        dispersion, velocity = split(nuisances)
        model, covered = observe(latents, velocity, dispersion)
        used = weight * covered
        return _objective(flux, used, model, nuisances.unbind(1), priors), (used > 0).sum(1)

    whole = _Observation(autoencoder, z)
    current = objective(whole, flux, weight, latents, nuisances)[0]
    free = n_latent + len(priors)
    eye = torch.eye(free, dtype=torch.float64, device=flux.device)
    prior_precision = torch.zeros(free, dtype=torch.float64, device=flux.device)
    prior_precision[n_latent:] = torch.tensor(priors, dtype=torch.float64).pow(-2)
    lam = torch.full((n,), float(damping), dtype=torch.float64, device=flux.device)
    # each object's normal matrix and gradient at its current point: a rejected step retries
    # from the same point with more damping, so its linearisation (a third of all steps) is kept
    normal_at = torch.zeros(n, free, free, dtype=torch.float64, device=flux.device)
    gradient_at = torch.zeros(n, free, dtype=torch.float64, device=flux.device)
    linearised = torch.zeros(n, dtype=torch.bool, device=flux.device)
    active = torch.arange(n, device=flux.device)
    for _ in range(steps):
        if not len(active):
            break
        stale = active[~linearised[active]]
        if len(stale):
            normal_at[stale], gradient_at[stale] = _normal_equations(
                _Observation(autoencoder, z[stale]), flux[stale], weight[stale], latents[stale],
                split(nuisances[stale]), fit_velocity, fit_dispersion)
            gradient_at[stale, n_latent:] -= nuisances[stale].double() * prior_precision[n_latent:]
            linearised[stale] = True
        normal = normal_at[active] + torch.diag(prior_precision)
        diag = torch.diagonal(normal, dim1=1, dim2=2)
        normal = normal + lam[active, None, None] * torch.diag_embed(diag) + 1e-9 * eye
        delta = torch.linalg.solve(normal, gradient_at[active][..., None])[..., 0]
        delta = torch.nan_to_num(delta.float())
        lat, nui = latents[active], nuisances[active]
        trial_latents, trial_nuisances = lat + delta[:, :n_latent], nui + delta[:, n_latent:]
        f, w = flux[active], weight[active]
        value, used = objective(_Observation(autoencoder, z[active]), f, w, trial_latents,
                                trial_nuisances)
        gain = current[active] - value
        better = gain > 0
        # Levenberg-Marquardt: trust a good model more, a bad one less
        lam[active] = torch.where(better, lam[active] / 3, lam[active] * 10)
        latents[active] = torch.where(better[:, None], trial_latents, lat)
        nuisances[active] = torch.where(better[:, None], trial_nuisances, nui)
        current[active] = torch.where(better, value, current[active])
        linearised[active[better]] = False
        # a fit that gained less than ``tolerance`` per pixel has converged; a rejected step is
        # retried
        active = active[~better | (gain >= tolerance * used)]
    dispersion, velocity = split(nuisances)
    rest = whole.rest(latents, dispersion)
    model, covered = interp_uniform(whole.positions(velocity)[0], rest)
    return RefinedFit(latents, velocity, dispersion, rest, model, covered)
