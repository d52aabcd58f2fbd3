"""refine_fit: Gauss-Newton on the latents and a velocity offset recovers what the decoder made."""

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
    _, _, _, before, cov = refine_fit(ae, start, flux, weight, z, steps=0)
    latents, fitted_v, _, after, cov_after = refine_fit(ae, start, flux, weight, z, steps=8)
    chi2_before = (weight * cov * (flux - before) ** 2).sum(1) / (weight > 0).sum(1)
    chi2_after = (weight * cov_after * (flux - after) ** 2).sum(1) / (weight > 0).sum(1)
    assert torch.all(chi2_after < 1.5) and torch.all(chi2_before > 10 * chi2_after)
    assert torch.allclose(fitted_v, velocity, atol=5.0)
    assert torch.allclose(latents, truth, atol=0.05)


def test_zero_steps_and_no_data_leave_the_start_unchanged():
    ae = _autoencoder()
    start = torch.zeros(2, 3)
    flux = torch.ones(2, 2000)
    weight = torch.zeros(2, 2000)
    latents, velocity, _, _, _ = refine_fit(ae, start, flux, weight, torch.tensor([0.1, 0.1]))
    assert torch.equal(latents, start) and torch.equal(velocity, torch.zeros(2))


def test_fixed_redshift_fits_latents_only():
    ae = _autoencoder()
    start = torch.zeros(1, 3)
    flux, weight = _observations(ae, torch.tensor([[0.2, 0.1, -0.1]]), torch.tensor([0.1]),
                                 torch.tensor([0.0]))
    _, velocity, _, _, _ = refine_fit(ae, start, flux, weight, torch.tensor([0.1]),
                                      velocity_prior=0)
    assert torch.equal(velocity, torch.zeros(1))
