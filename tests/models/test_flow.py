"""LatentFlow: a proper density of the raw latents, early stopping, hash-checked persistence."""

from __future__ import annotations

import numpy as np
import pytest

from specsift.errors import SpecsiftInputError
from specsift.models.flow import LatentFlow

SCALES = np.array([0.02, 1.0, 50.0])


def _gaussian(n, seed):
    return np.random.default_rng(seed).normal(size=(n, len(SCALES))) * SCALES + 3.0


@pytest.fixture(scope="module")
def gaussian_flow():
    return LatentFlow(transforms=2, hidden=(32, 32), max_epochs=20, patience=4, batch_size=500,
                      device="cpu").fit(_gaussian(2000, 0), _gaussian(500, 1))


def test_log_prob_matches_the_analytic_gaussian_density_of_raw_latents(gaussian_flow):
    x = _gaussian(2000, 2)
    z = (x - 3.0) / SCALES
    analytic = (-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - np.log(SCALES)).sum(axis=1)
    logp = gaussian_flow.log_prob(x)
    assert abs(logp.mean() - analytic.mean()) < 0.1
    assert np.corrcoef(logp, analytic)[0, 1] > 0.98


def test_density_integrates_to_one_in_one_dimension():
    rng = np.random.default_rng(4)
    flow = LatentFlow(transforms=2, hidden=(16,), max_epochs=20, patience=3, device="cpu")
    flow.fit(rng.normal(2.0, 0.5, (1500, 1)), rng.normal(2.0, 0.5, (300, 1)))
    grid = np.linspace(-2.0, 6.0, 4001)[:, None]
    integral = np.trapezoid(np.exp(flow.log_prob(grid)), grid[:, 0])
    assert integral == pytest.approx(1.0, abs=0.02)


def test_early_stopping_keeps_the_best_validation_epoch(gaussian_flow):
    history = gaussian_flow.history_
    assert gaussian_flow.n_epochs_ == len(history) <= 20
    best = max(history) - np.log(gaussian_flow.latent_std_.numpy()).sum()
    assert gaussian_flow.best_val_log_prob_ == pytest.approx(best, rel=1e-6)
    assert gaussian_flow.log_prob(_gaussian(500, 1)).mean() == pytest.approx(best, abs=1e-3)


def test_scoring_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        LatentFlow().log_prob(np.zeros((2, 3)))


def test_non_finite_or_misshaped_latents_are_rejected_with_the_row(gaussian_flow):
    bad = _gaussian(5, 3)
    bad[3, 1] = np.nan
    with pytest.raises(SpecsiftInputError, match="row 3"):
        gaussian_flow.log_prob(bad)
    with pytest.raises(SpecsiftInputError, match="fitted on 3"):
        gaussian_flow.log_prob(np.zeros((2, 4)))


def test_saved_flow_reloads_identically_and_refuses_modified_weights(gaussian_flow, tmp_path):
    from specsift.models.modeldir import ModelDir

    model_dir = ModelDir(tmp_path / "model")
    gaussian_flow.save(model_dir)
    assert model_dir.config["weights"]["flow"]["sha256"]
    assert model_dir.config["flow"]["features"] == 3
    x = _gaussian(50, 5)
    np.testing.assert_array_equal(LatentFlow.load(model_dir).log_prob(x), gaussian_flow.log_prob(x))
    weights = model_dir.weights_path("flow")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SpecsiftInputError, match="sha256"):
        LatentFlow.load(model_dir)


def test_loading_a_model_without_a_flow_says_how_to_make_one(tmp_path):
    from specsift.models.modeldir import ModelDir

    with pytest.raises(SpecsiftInputError, match="train-flow"):
        LatentFlow.load(ModelDir(tmp_path))
