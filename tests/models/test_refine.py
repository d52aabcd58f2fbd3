"""refine_fit: Gauss-Newton on the latents, a velocity offset and a line-width change recovers
what the decoder made."""

import numpy as np
import torch

from specsift.models.autoencoder import SpectrumAutoencoder
from specsift.models.instrument import Instrument
from specsift.models.refine import C_KMS, refine_fit


def _autoencoder(seed=0):
    torch.manual_seed(seed)
    inst = Instrument(np.linspace(4000.0, 8000.0, 2000))
    return SpectrumAutoencoder(inst, 3, 0.0, 0.3, [4, 8, 8], [3, 3, 3], [8], [32, 64], 1.0).eval()


def _observations(ae, latents, z, velocity, sigma=0.01, seed=1):
    """Decoder output at ``latents`` and ``z`` moved by ``velocity`` km/s, plus noise."""
    with torch.no_grad():
        zz = (1 + z) * (1 + velocity / C_KMS) - 1
        truth, covered = ae.observe(ae.rest_model(latents), zz)
    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(seed)) * sigma
    weight = covered.float() / sigma**2
    return truth + noise, weight


def test_refinement_recovers_latents_and_velocity():
    ae = _autoencoder()
    with torch.no_grad():                          # a positive spectrum with structure
        ae.decoder.mlp[-1].bias += 1.0
        ae.decoder.mlp[-1].weight.mul_(5.0)
    truth = torch.tensor([[0.5, -0.3, 0.2], [-0.4, 0.1, 0.6]])
    z = torch.tensor([0.05, 0.2])
    velocity = torch.tensor([25.0, -15.0])
    flux, weight = _observations(ae, truth, z, velocity)
    start = truth + 0.3
    before = refine_fit(ae, start, flux, weight, z, steps=0)
    after = refine_fit(ae, start, flux, weight, z, steps=8, tolerance=0)
    assert torch.all(_reduced_chi2(after, flux, weight) < 1.5)
    assert torch.all(_reduced_chi2(before, flux, weight) > 10 * _reduced_chi2(after, flux, weight))
    assert torch.allclose(after.velocity, velocity, atol=5.0)
    assert torch.allclose(after.latents, truth, atol=0.05)


def _reduced_chi2(fit, flux, weight):
    return (weight * fit.covered * (flux - fit.model) ** 2).sum(1) / (weight > 0).sum(1)


def _broadened(ae, rest, ds2):
    """``rest`` convolved with a Gaussian of (B,) variance ``ds2`` (km/s)^2, pixel by pixel."""
    wave = ae.rest_wave.double()
    step = float(wave[1] - wave[0])
    sigma = wave[None] * ds2.double().sqrt()[:, None] / C_KMS / step        # (B, R) in pixels
    offsets = torch.arange(-6, 7, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma[..., None]) ** 2)
    kernel = kernel / kernel.sum(-1, keepdim=True)
    padded = torch.nn.functional.pad(rest.double()[:, None], (6, 6), mode="replicate")[:, 0]
    windows = padded.unfold(1, 13, 1)                                       # (B, R, 13)
    return (windows * kernel).sum(-1).float()


def test_refinement_recovers_a_broadening_of_the_lines():
    ae = _autoencoder()
    with torch.no_grad():
        ae.decoder.mlp[-1].bias += 1.0
    latents = torch.tensor([[0.5, -0.3, 0.2]])
    z = torch.tensor([0.1])
    wave = ae.rest_wave.double()
    step = float(wave[1] - wave[0])
    ds2 = torch.tensor([(0.5 * step / float(wave.mean()) * C_KMS) ** 2])  # half a rest pixel
    with torch.no_grad():
        rest = _broadened(ae, ae.rest_model(latents), ds2)
        truth, covered = ae.observe(rest, z)
    sigma = 0.002
    flux = truth + sigma * torch.randn(truth.shape, generator=torch.Generator().manual_seed(3))
    weight = covered.float() / sigma**2
    prior = float(ds2.sqrt()) * 3
    fixed = refine_fit(ae, latents, flux, weight, z, steps=6, velocity_prior=0,
                       dispersion_prior=0)
    free = refine_fit(ae, latents, flux, weight, z, steps=6, velocity_prior=0,
                      dispersion_prior=prior)
    assert torch.equal(fixed.dispersion, torch.zeros(1))
    assert torch.allclose(free.dispersion, ds2, rtol=0.25)
    assert _reduced_chi2(free, flux, weight) < 0.5 * _reduced_chi2(fixed, flux, weight)


def test_zero_steps_and_no_data_leave_the_start_unchanged():
    ae = _autoencoder()
    start = torch.zeros(2, 3)
    flux = torch.ones(2, 2000)
    weight = torch.zeros(2, 2000)
    fit = refine_fit(ae, start, flux, weight, torch.tensor([0.1, 0.1]))
    assert torch.equal(fit.latents, start) and torch.equal(fit.velocity, torch.zeros(2))
    assert torch.equal(fit.dispersion, torch.zeros(2))


def test_fixed_redshift_fits_latents_only():
    ae = _autoencoder()
    start = torch.zeros(1, 3)
    flux, weight = _observations(ae, torch.tensor([[0.2, 0.1, -0.1]]), torch.tensor([0.1]),
                                 torch.tensor([0.0]))
    fit = refine_fit(ae, start, flux, weight, torch.tensor([0.1]), velocity_prior=0)
    assert torch.equal(fit.velocity, torch.zeros(1))
