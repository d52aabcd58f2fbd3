"""The redshift/interpolation step must equal numpy.interp and give no model outside its range."""

import numpy as np
import torch

from specsift.models.resample import interp, redshift_to_observed


def test_interp_matches_numpy_on_an_irregular_grid_and_is_zero_outside():
    rng = np.random.default_rng(1)
    xp = np.sort(rng.uniform(0, 10, 50))
    fp = rng.normal(size=(3, 50))
    x = rng.uniform(-2, 12, (3, 80))
    values, inside = interp(torch.tensor(x), torch.tensor(xp), torch.tensor(fp))
    for b in range(3):
        expected = np.interp(x[b], xp, fp[b], left=0.0, right=0.0)
        np.testing.assert_allclose(values[b].numpy(), expected, atol=1e-12)
        np.testing.assert_array_equal(inside[b].numpy(), (x[b] >= xp[0]) & (x[b] <= xp[-1]))


def test_redshifted_model_matches_numpy_interp_for_each_object():
    wave_rest = torch.linspace(2000.0, 9900.0, 7000, dtype=torch.float64)
    wave_obs = torch.linspace(3600.0, 9824.0, 7781, dtype=torch.float64)
    model = torch.randn(4, 7000)
    z = torch.tensor([0.0, 0.13, 0.6, 2.0])
    values, covered = redshift_to_observed(wave_rest, model, wave_obs, z)
    for b in range(4):
        rest = wave_obs.numpy() / (1 + z[b].item())
        expected = np.interp(rest, wave_rest.numpy(), model[b].numpy(), left=0.0, right=0.0)
        np.testing.assert_allclose(values[b].numpy(), expected, atol=2e-6)
        np.testing.assert_array_equal(covered[b].numpy(), rest >= wave_rest[0].item())


def test_pixels_outside_the_rest_grid_get_exactly_zero_and_no_gradient():
    wave_rest = torch.linspace(3000.0, 5000.0, 201, dtype=torch.float64)
    wave_obs = torch.linspace(3600.0, 9000.0, 400, dtype=torch.float64)
    model = torch.ones(1, 201, requires_grad=True)
    values, covered = redshift_to_observed(wave_rest, model, wave_obs, torch.tensor([0.5]))
    assert 0 < covered.sum() < 400
    assert torch.all(values[~covered] == 0)
    assert torch.allclose(values[covered], torch.ones(()))
    values.sum().backward()
    # each covered observed pixel hands exactly weight 1 to its two rest neighbours
    assert torch.isclose(model.grad.sum(), covered.sum().double().float())
