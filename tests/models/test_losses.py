"""Losses: fidelity as in eq. (1), pairwise distances by matmul, scale invariance of the others."""

import pytest
import torch

from specsift.models.losses import (chi2_terms, consistency_loss, fidelity_loss,
                                    pairwise_sq_distances, similarity_loss)


def test_fidelity_is_half_weighted_squared_residual_over_all_pixels():
    flux = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    model = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    weight = torch.tensor([[1.0, 4.0, 0.0, 1.0]])  # pixel 3 masked
    chi2, n_good = chi2_terms(flux, weight, model)
    assert chi2.item() == pytest.approx(0 + 4 * 1 + 16)
    assert n_good.item() == 3
    assert fidelity_loss(flux, weight, model).item() == pytest.approx(0.5 * 20 / 4)


def test_fidelity_ignores_invalid_objects_and_is_zero_not_nan_without_any():
    flux = torch.tensor([[1.0, 1.0], [5.0, 5.0]])
    weight = torch.ones(2, 2)
    model = torch.zeros(2, 2)
    assert fidelity_loss(flux, weight, model, torch.tensor([True, False])).item() == pytest.approx(0.5)
    assert fidelity_loss(flux, weight, model, torch.tensor([False, False])).item() == 0.0


def test_pairwise_distances_equal_brute_force():
    x = torch.randn(9, 5, dtype=torch.float64) + 100  # offset: checks cancellation control
    expected = torch.cdist(x, x).square()
    assert torch.allclose(pairwise_sq_distances(x.float()), expected.float(), atol=1e-3)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_similarity_and_consistency_do_not_change_when_latents_are_rescaled(scale):
    torch.manual_seed(0)
    latents = torch.randn(16, 6)
    copies = latents + 0.1 * torch.randn(16, 6)
    models = torch.randn(16, 50)
    sim = similarity_loss(latents, models)
    cons = consistency_loss(latents, copies)
    assert sim.item() > 0.01 and cons.item() > 1e-4
    assert similarity_loss(scale * latents, models).item() == pytest.approx(sim.item(), rel=1e-4)
    assert consistency_loss(scale * latents, scale * copies).item() == pytest.approx(cons.item(), rel=1e-4)


def test_similarity_is_zero_when_latent_distances_follow_model_distances():
    models = torch.randn(12, 40)
    rotation, _ = torch.linalg.qr(torch.randn(40, 40))
    latents = 0.01 * models @ rotation  # an isometry up to scale
    assert similarity_loss(latents, models).item() == pytest.approx(0.0, abs=1e-6)
    assert similarity_loss(torch.randn(12, 40), models).item() > 0.05


def test_consistency_measures_copy_distance_in_units_of_the_latent_spread():
    latents = torch.randn(32, 4)
    assert consistency_loss(latents, latents).item() == 0.0
    spread = pairwise_sq_distances(latents)[~torch.eye(32, dtype=bool)].mean()
    shifted = latents + torch.tensor([0.3, 0.0, 0.0, 0.0])
    assert consistency_loss(latents, shifted).item() == pytest.approx(0.09 / spread.item(), rel=1e-5)


def test_invalid_objects_are_left_out_of_the_pair_losses():
    latents = torch.randn(6, 3)
    copies = latents.clone()
    copies[5] += 1e6  # a flagged object with a wild copy
    valid = torch.tensor([True] * 5 + [False])
    assert consistency_loss(latents, copies, valid).item() == 0.0
    assert torch.isfinite(similarity_loss(latents, torch.randn(6, 9), valid=valid))
