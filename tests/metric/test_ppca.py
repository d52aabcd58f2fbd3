"""PPCA with missing values recovers a known subspace, is deterministic, and weights errors;
the default imputation solver agrees with exact EM."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from specsift.errors import SpecsiftInputError
from specsift.metric import PPCA, WeightedPPCA
from specsift.metric import ppca as ppca_module


def _low_rank(n=800, d=60, k=4, noise=0.1, missing=0.2, seed=0):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, k)))[0] * np.array([5.0, 4.0, 3.0, 2.0])[:k]
    X = rng.normal(size=(n, k)) @ basis.T + rng.normal(size=d) + noise * rng.normal(size=(n, d))
    X = X.astype(np.float32)
    X[rng.random(X.shape) < missing] = np.nan
    return X, basis


def test_recovers_known_subspace_with_missing_values(fitted):
    X, basis, model = fitted
    assert np.degrees(subspace_angles(model.components_.T, basis)).max() < 1.0
    assert model.noise_variance_ == pytest.approx(0.01, rel=0.1)
    assert model.components_.shape == (4, 60)
    np.testing.assert_allclose(model.components_ @ model.components_.T, np.eye(4), atol=1e-5)


def test_exact_em_loglikelihood_never_decreases():
    """``max_iter`` also cuts the imputation phase short, so EM starts far from the optimum."""
    X, _ = _low_rank()
    model = PPCA(n_components=4, solver="em", seed=0, tol=0, max_iter=4).fit(X)
    assert len(model.loglike_) == 4 and model.loglike_[-1] - model.loglike_[0] > 0.1
    assert np.all(np.diff(model.loglike_) > -1e-6)


def test_imputation_cut_short_by_max_iter_says_so(caplog):
    X, _ = _low_rank()
    with caplog.at_level("WARNING", logger="specsift.metric"):
        PPCA(n_components=4, seed=0, max_iter=3).fit(X)
    assert "stopped at max_iter=3" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="specsift.metric"):
        PPCA(n_components=4, seed=0).fit(X)
    assert "max_iter" not in caplog.text


@pytest.mark.parametrize("solver", ["impute", "em"])
def test_same_seed_same_model_and_convergence_rule(solver):
    X, _ = _low_rank()
    a = PPCA(n_components=4, solver=solver, seed=3, tol=1e-4).fit(X)
    b = PPCA(n_components=4, solver=solver, seed=3, tol=1e-4).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.n_iter_ < 200
    if solver == "em":
        assert a.loglike_[-1] - a.loglike_[-2] < 1e-4
    else:
        assert a.loglike_ == []


def test_unknown_solver_is_a_clear_error():
    with pytest.raises(ValueError, match="solver"):
        PPCA(n_components=2, solver="svd").fit(np.zeros((10, 5)))


def _apogee_like(n=1500, d=120, k=4, seed=2):
    """Chip gaps (a sixth of the pixels, never observed) plus 4% scattered censored pixels,
    and stars that differ in how much they miss (2% to 10%)."""
    X, _ = _low_rank(n=n, d=d, k=k, missing=0.0, seed=seed)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < np.linspace(0.02, 0.1, n)[:, None]] = np.nan
    X[:, d // 3:d // 3 + d // 6] = np.nan
    return X


def _fit_pair(cls, X, errors=None):
    """The default solver's fit and exact EM's, converged tightly, both with a warm stage."""
    return [cls(n_components=4, solver=solver, seed=0, tol=1e-7, warm_rows=300)
            .fit(X, errors=errors) for solver in ("impute", "em")]


@pytest.mark.parametrize("layout", ["random", "apogee"])
def test_default_solver_agrees_with_exact_em(layout):
    """The imputation solver's fixed point is exact EM's up to the shared posterior covariance
    of the imputed values (module docstring). Leaving out the conditional variance of the
    imputed values would bias sigma^2 by 5-20% here, keeping only its noise part by 0.2-0.9%:
    both fail."""
    X = _low_rank(n=1500, d=120, missing=0.2, seed=2)[0] if layout == "random" \
        else _apogee_like()
    train, test = X[:1200], X[1200:]
    fast, exact = _fit_pair(PPCA, train)
    used = exact.used_features_
    angles = np.degrees(subspace_angles(fast.components_[:, used].T.astype(float),
                                        exact.components_[:, used].T.astype(float)))
    assert angles.max() < 0.05
    assert fast.noise_variance_ == pytest.approx(exact.noise_variance_, rel=1e-3)
    assert fast.score(test) == pytest.approx(exact.score(test), abs=2e-5)
    np.testing.assert_allclose(fast.explained_variance_, exact.explained_variance_, rtol=1e-3)


def test_weighted_default_solver_agrees_with_exact_em():
    """Measured pixels with errors are blended with the model: a / (1 - a) = s2 / err^2."""
    rng = np.random.default_rng(5)
    X, _ = _low_rank(n=1200, d=80, noise=0.1, missing=0.1, seed=5)
    errors = np.where(rng.random(X.shape) < 0.3, 0.3, 0.02).astype(np.float32)
    X = X + (rng.normal(size=X.shape) * errors).astype(np.float32)
    fast, exact = _fit_pair(WeightedPPCA, X, errors)
    angles = np.degrees(subspace_angles(fast.components_.T.astype(float),
                                        exact.components_.T.astype(float)))
    assert angles.max() < 0.1
    assert fast.noise_variance_ == pytest.approx(exact.noise_variance_, rel=5e-3)
    assert fast.score(X, errors) == pytest.approx(exact.score(X, errors), abs=5e-5)


def test_stages_too_large_to_keep_are_rebuilt_to_the_same_model(monkeypatch):
    """Above the cache size each pass rebuilds the blocks from X (only the data: the missing
    entries are kept from the first pass); the fit must not change."""
    X, _ = _low_rank(missing=0.1)
    kept = PPCA(n_components=4, seed=0, batch_size=128).fit(X)
    monkeypatch.setattr(ppca_module, "_CACHE_BYTES", 1000)
    rebuilt = PPCA(n_components=4, seed=0, batch_size=128).fit(X)
    assert rebuilt.n_iter_ == kept.n_iter_
    np.testing.assert_allclose(rebuilt.components_, kept.components_, atol=1e-5)



def test_sampled_and_gathered_imputation_give_the_same_model(monkeypatch):
    """The imputation solver completes a block either by a sampled product over its missing
    entries or, when many are missing, by a dense product and a gather; with blocks of both
    kinds in one fit (rows missing 1-40%), every choice must give the same model, also when
    the blocks are rebuilt on each pass."""
    rng = np.random.default_rng(5)
    X, _ = _low_rank(n=600, missing=0.0, seed=5)
    X[rng.random(X.shape) < np.linspace(0.01, 0.4, len(X))[:, None]] = np.nan
    fits = {}
    for gather_above, cache in ((1.0, None), (0.0, None), (0.2, None), (0.2, 1000)):
        monkeypatch.setattr(ppca_module, "_GATHER_ABOVE", gather_above)
        if cache:
            monkeypatch.setattr(ppca_module, "_CACHE_BYTES", cache)
        fits[gather_above, cache] = PPCA(n_components=4, seed=0, batch_size=64,
                                         warm_rows=None).fit(X)
    sampled = fits[1.0, None]
    for model in fits.values():
        assert model.n_iter_ == sampled.n_iter_
        np.testing.assert_allclose(model.components_, sampled.components_, atol=1e-5)
        assert model.noise_variance_ == pytest.approx(sampled.noise_variance_, rel=1e-5)

@pytest.mark.parametrize("solver", ["impute", "em"])
def test_warm_start_stage_reaches_the_full_data_solution(solver):
    X, basis = _low_rank(n=1000)
    warm = PPCA(n_components=4, solver=solver, seed=0, warm_rows=300, tol=1e-4).fit(X)
    cold = PPCA(n_components=4, solver=solver, seed=0, warm_rows=None, tol=1e-4).fit(X)
    assert np.degrees(subspace_angles(warm.components_.T, cold.components_.T)).max() < 0.2
    assert warm.score(X) == pytest.approx(cold.score(X), abs=1e-3)


@pytest.fixture(scope="module")
def fitted():
    X, basis = _low_rank()
    return X, basis, PPCA(n_components=4, seed=0).fit(X)


def test_transform_uses_only_observed_pixels(fitted):
    X, _, model = fitted
    full = np.nan_to_num(X[:1], nan=0.0) + np.where(np.isnan(X[:1]), model.mean_, 0)
    z = model.transform(X[:1])
    corrupted = X[:1].copy()
    corrupted[np.isnan(corrupted)] = 1e6  # huge values at pixels that are then marked missing
    corrupted[np.isnan(X[:1])] = np.nan
    np.testing.assert_allclose(model.transform(corrupted), z)
    assert np.abs(model.transform(full) - z).max() < 1.0


def test_transform_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        PPCA(n_components=2).transform(np.zeros((2, 5)))


def test_row_with_every_pixel_missing_is_named():
    X, _ = _low_rank(n=200)
    model = PPCA(n_components=2, seed=0, tol=1e-3).fit(X)
    X[7] = np.nan
    with pytest.raises(SpecsiftInputError, match="row 7"):
        model.transform(X)


def test_weighted_ppca_downweights_noisy_pixels():
    rng = np.random.default_rng(1)
    X, basis = _low_rank(n=800, noise=0.05, missing=0.05, seed=1)
    errors = np.full(X.shape, 0.05, np.float32)
    noisy = rng.random(X.shape) < 0.3
    errors[noisy] = 2.0
    X = X + np.where(noisy, rng.normal(size=X.shape) * 2.0, 0).astype(np.float32)
    plain = PPCA(n_components=4, seed=0).fit(X)
    weighted = WeightedPPCA(n_components=4, seed=0).fit(X, errors=errors)
    angle_plain = np.degrees(subspace_angles(plain.components_.T, basis)).max()
    angle_weighted = np.degrees(subspace_angles(weighted.components_.T, basis)).max()
    assert angle_weighted < angle_plain / 2


def test_truncated_model_keeps_leading_components(fitted):
    X, _, model = fitted
    small = model.truncated(2)
    np.testing.assert_array_equal(small.components_, model.components_[:2])
    assert small.noise_variance_ > model.noise_variance_
    assert small.transform(X).shape == (len(X), 2)


def test_sparse_and_dense_missing_pixel_sums_give_the_same_model():
    """The E- and M-step sums over observed pixels are either dense products or all pixels
    minus sparse products over the missing ones; both must fit the same model. Rows differ
    in how much they miss, and small blocks mix both kinds within one fit."""
    rng = np.random.default_rng(4)
    X, _ = _low_rank(n=600, missing=0.0, seed=4)
    X[rng.random(X.shape) < np.linspace(0.01, 0.6, len(X))[:, None]] = np.nan
    fits = {}
    for sparse_below in (0.0, 0.1, 1.0):
        model = PPCA(n_components=4, solver="em", seed=0, tol=-np.inf, max_iter=6,
                     batch_size=64, warm_rows=None)
        model.sparse_below = sparse_below
        fits[sparse_below] = model.fit(X)
    dense = fits[0.0]
    for model in (fits[0.1], fits[1.0]):
        np.testing.assert_allclose(model.loglike_, dense.loglike_, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.components_, dense.components_, atol=1e-4)
        np.testing.assert_allclose(model.mean_, dense.mean_, atol=1e-4)
        assert model.noise_variance_ == pytest.approx(dense.noise_variance_, rel=1e-5)
        np.testing.assert_allclose(model.transform(X), dense.transform(X), atol=1e-3)


def test_score_is_the_exact_marginal_likelihood_of_the_observed_pixels(fitted):
    """Brute force: each row's observed pixels are Gaussian, N(mu_o, W_o W_o^T + s2 I)."""
    X, _, model = fitted
    w = model.components_.T * np.sqrt(model.explained_variance_ - model.noise_variance_)
    total = count = 0.0
    for x in X[:200].astype(np.float64):
        seen = np.isfinite(x)
        cov = w[seen] @ w[seen].T + model.noise_variance_ * np.eye(seen.sum())
        r = x[seen] - model.mean_[seen]
        total -= 0.5 * (seen.sum() * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1]
                        + r @ np.linalg.solve(cov, r))
        count += seen.sum()
    assert model.score(X[:200]) == pytest.approx(total / count, abs=1e-5)


def test_explained_variances_reach_those_of_the_generating_components(fitted):
    """The scale of W is slow to converge under plain EM when sigma^2 << variances."""
    _, _, model = fitted
    assert model.explained_variance_ == pytest.approx([25.0, 16.0, 9.0, 4.0], rel=0.15)
