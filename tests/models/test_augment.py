"""A redshifted copy must look like the same object observed at the new redshift."""

import numpy as np
import torch

from specsift.models.augment import redshift_copy


def _spectrum(wave, z):
    rest = wave / (1 + z)
    return 1 + 0.3 * np.sin(rest / 200) + 2 * np.exp(-0.5 * ((rest - 5000) / 20) ** 2)


def test_copy_equals_the_object_generated_at_the_new_redshift():
    wave = np.linspace(4000.0, 9000.0, 2500)
    z = np.array([0.05, 0.2, 0.3])
    flux = torch.tensor(np.stack([_spectrum(wave, zi) for zi in z]), dtype=torch.float32)
    ivar = torch.ones_like(flux)
    ivar[0, 1000:1010] = 0  # a masked stretch must stay masked in the copy
    gen = torch.Generator().manual_seed(3)
    flux2, ivar2, z2 = redshift_copy(flux, ivar, torch.tensor(z, dtype=torch.float32),
                                     torch.tensor(wave), 0.0, 0.5, gen, max_shift=0.1)
    assert torch.all((z2 - torch.tensor(z)).abs() <= 0.1 + 1e-6) and torch.all(z2 >= 0)
    for b in range(3):
        good = ivar2[b].numpy() > 0
        expected = _spectrum(wave, z2[b].item())
        assert good.sum() > 1500
        np.testing.assert_allclose(flux2[b].numpy()[good], expected[good], atol=0.02)
        assert np.all(flux2[b].numpy()[~good] == 0)
    # the masked stretch moved with the spectrum: rest wavelength of its pixels stays masked
    lost = wave[1000:1010] / (1 + z[0]) * (1 + z2[0].item())
    nearest = np.searchsorted(wave, lost)
    assert np.all(ivar2[0].numpy()[nearest[(nearest > 0) & (nearest < 2500)]] == 0)


def test_extra_noise_lowers_ivar_to_match_and_is_reproducible_from_the_seed():
    flux = torch.ones(64, 500)
    ivar = torch.full((64, 500), 4.0)
    wave = torch.linspace(4000.0, 6000.0, 500, dtype=torch.float64)
    z = torch.full((64,), 0.1)
    a = redshift_copy(flux, ivar, z, wave, 0.0, 0.2, torch.Generator().manual_seed(1), noise=1.0)
    b = redshift_copy(flux, ivar, z, wave, 0.0, 0.2, torch.Generator().manual_seed(1), noise=1.0)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    flux2, ivar2, _ = a
    good = ivar2 > 0
    assert torch.all(ivar2[good] <= 4.0) and ivar2[good].min() < 3.0
    # noise-free input: the added noise in units of the copy's sigma has variance s^2/(1+s^2)
    pulls = ((flux2 - 1) * ivar2.sqrt())[good]
    assert abs(pulls.std().item() - np.sqrt(np.mean([1 - 1 / (1 + u**2) for u in
                                                     np.linspace(0, 1, 1001)]))) < 0.05
