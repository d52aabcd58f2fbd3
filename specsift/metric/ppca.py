"""Probabilistic PCA with missing pixels, fitted by exact EM in streamed row blocks.

Why a new implementation: APOGEE spectra have censored pixels (sky lines, chip gaps,
interstellar windows) that differ from star to star, and the reference code's PPCA loops over
stars in Python. Here every E-step and M-step quantity is a dense matmul over a block of rows:
with ``o`` the 0/1 observed mask (or, for :class:`WeightedPPCA`, the precision
``o / (sigma^2 + err^2)``) each star's K x K posterior precision
``M_n = I + sum_d p_nd w_d w_d^T`` is one row of ``P @ (w (x) w)`` (packed upper triangle), and
the per-pixel normal equations of the M-step are ``P^T @ E[z~ z~^T]``. K x K systems are solved
with batched Cholesky factorisations. Cost per iteration: ~2 N D K^2/2 multiply-adds.

Model (Tipping & Bishop 1999): ``x = W z + mu + eps``, ``z ~ N(0, I_K)``,
``eps_d ~ N(0, sigma^2 + err_d^2)``; missing pixels are marginalised out (exact EM, not
imputation; Ilin & Raiko 2010, JMLR 11, 1957, Sect. 3.2).

Convergence rule: iterate until the mean log-likelihood per observed value rises by less than
``tol`` nats between iterations, or ``max_iter`` is reached. With ``warm_rows`` set and more
rows than that, EM first converges on a fixed random subset of ``warm_rows`` rows (same rule),
then continues on all rows: the subset solution is already close, so only a few full passes
are needed.

References:
    Tipping & Bishop (1999), J. R. Stat. Soc. B 61, 611.
    Ilin & Raiko (2010), "Practical approaches to principal component analysis in the presence
    of missing values", JMLR 11, 1957.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..errors import SpecsiftInputError
from ..runtime import progress, resolve_device

__all__ = ["PPCA", "WeightedPPCA"]

logger = logging.getLogger("specsift.metric")


def _triu(k: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Upper-triangle index pairs of a k x k matrix and the (k, k) map back to packed slots."""
    i, j = torch.triu_indices(k, k, device=device)
    slot = torch.empty(k, k, dtype=torch.long, device=device)
    slot[i, j] = torch.arange(len(i), device=device)
    slot[j, i] = torch.arange(len(i), device=device)
    return i, j, slot


class PPCA:
    """Probabilistic PCA for data with missing values (NaN), scikit-learn style.

    Arguments:
        n_components: number of latent dimensions K.
        max_iter: maximum number of EM iterations (per stage).
        tol: convergence threshold on the rise of the mean log-likelihood per observed value.
        random_state: seed of the initialisation and of the warm-start subset.
        batch_size: rows per block; bounds memory at about 6 x batch_size x D floats.
        warm_rows: converge first on this many random rows (None: always use every row).
        min_observed: pixels observed in fewer rows are left out of the model.
        device: torch device (``"auto"``: CUDA when present).

    Fitted attributes: ``components_`` (K, D) orthonormal principal axes (rows, zero for
    unused pixels), ``explained_variance_`` (K,), ``mean_`` (D,), ``noise_variance_``,
    ``loglike_`` (history per iteration), ``n_iter_``, ``used_features_`` (D,) bool.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 40)).astype(np.float32)
        >>> X[X > 2] = np.nan
        >>> model = PPCA(n_components=3, random_state=0).fit(X)
        >>> model.transform(X).shape
        (200, 3)
    """

    weighted = False

    def __init__(self, n_components: int = 30, max_iter: int = 200, tol: float = 1e-5,
                 random_state: int = 0, batch_size: int = 4096, warm_rows: int | None = 20000,
                 min_observed: int | None = None, device: str = "cpu"):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.batch_size = batch_size
        self.warm_rows = warm_rows
        self.min_observed = min_observed
        self.device = device

    # ------------------------------------------------------------------ public API
    def fit(self, X, errors=None) -> "PPCA":
        """Fit on ``X`` (N, D) with NaN for missing values; ``errors`` only for WeightedPPCA."""
        X = self._check_input(X, errors)
        self._device = resolve_device(self.device)
        n, k = X.shape[0], self.n_components
        observed_counts = self._count_observed(X)
        self.used_features_ = observed_counts >= (self.min_observed or k + 2)
        if self.used_features_.sum() <= k:
            raise SpecsiftInputError(f"only {self.used_features_.sum()} pixels are observed often "
                                     f"enough for {k} components")
        self._cols = np.flatnonzero(self.used_features_)
        rng = np.random.default_rng(self.random_state)
        self._initialise(X, rng, observed_counts[self._cols])
        self.loglike_ = []
        stages = [np.arange(n)]
        if self.warm_rows and n > self.warm_rows:
            stages.insert(0, np.sort(rng.choice(n, self.warm_rows, replace=False)))
        self.n_iter_ = 0
        for rows in stages:
            self._run_em(X, errors, rows)
        self._finalise()
        return self

    def transform(self, X, errors=None) -> np.ndarray:
        """Posterior-mean latents E[z | observed pixels] (N, K), each row with its own mask."""
        self._check_fitted()
        X = self._check_input(X, errors, fitted=True)
        out = np.empty((X.shape[0], self.n_components), np.float32)
        for start, stop, block in self._blocks(X, errors, np.arange(X.shape[0])):
            ez, *_ = self._e_step(block)
            out[start:stop] = ez.cpu().numpy()
        return out

    def inverse_transform(self, Z) -> np.ndarray:
        """Model spectra ``W z + mu`` for latents Z (N, K)."""
        self._check_fitted()
        w = self.components_.T * np.sqrt(np.maximum(self.explained_variance_ -
                                                    self.noise_variance_, 0.0))
        return np.asarray(Z) @ w.T + self.mean_

    def score(self, X, errors=None) -> float:
        """Mean log-likelihood per observed value of ``X`` under the fitted model."""
        self._check_fitted()
        X = self._check_input(X, errors, fitted=True)
        total, count = 0.0, 0.0
        for _, _, block in self._blocks(X, errors, np.arange(X.shape[0])):
            *_, loglike = self._e_step(block)
            total += float(loglike.sum())
            count += float(block["n_obs"].sum(dtype=torch.float64))
        return total / count

    # ------------------------------------------------------------------ input handling
    def _check_input(self, X, errors, fitted: bool = False) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype != np.float32:
            X = X.astype(np.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (stars x pixels), got shape {X.shape}")
        if fitted and X.shape[1] != len(self.mean_):
            raise ValueError(f"X has {X.shape[1]} pixels, the model was fitted on "
                             f"{len(self.mean_)}")
        if errors is not None and not self.weighted:
            raise ValueError("PPCA ignores per-pixel errors; use WeightedPPCA for that")
        if self.weighted:
            if errors is None:
                raise ValueError("WeightedPPCA needs errors (same shape as X)")
            if np.shape(errors) != X.shape:
                raise ValueError(f"errors has shape {np.shape(errors)}, X has {X.shape}")
        return X

    def _count_observed(self, X: np.ndarray) -> np.ndarray:
        counts = np.zeros(X.shape[1], np.int64)
        for start in range(0, X.shape[0], self.batch_size):
            counts += np.isfinite(X[start:start + self.batch_size]).sum(0)
        return counts

    def _blocks(self, X, errors, rows):
        """Yield (start, stop, tensors) for consecutive blocks of ``rows``."""
        cols = self._cols
        for start in range(0, len(rows), self.batch_size):
            stop = min(len(rows), start + self.batch_size)
            idx = rows[start:stop]
            contiguous = idx[-1] - idx[0] == len(idx) - 1
            x = (X[idx[0]:idx[-1] + 1] if contiguous else X[idx])[:, cols]
            x = torch.as_tensor(x, device=self._device)
            obs = torch.isfinite(x)
            empty = ~obs.any(1)
            if empty.any():
                bad = int(idx[int(torch.nonzero(empty)[0])])
                raise SpecsiftInputError("every pixel of this spectrum is missing", row=bad)
            block = {"x": torch.where(obs, x, 0.0), "obs": obs.float(),
                     "n_obs": obs.sum(1, dtype=torch.float32)}
            if self.weighted:
                err = np.asarray((errors[idx[0]:idx[-1] + 1] if contiguous
                                  else errors[idx])[:, cols], np.float32)
                err2 = torch.as_tensor(err, device=self._device).square()
                block["err2"] = torch.where(obs & torch.isfinite(err2), err2, 0.0)
            yield start, stop, block

    # ------------------------------------------------------------------ EM core
    def _precision(self, block) -> tuple[torch.Tensor, float]:
        """Per-pixel noise precision as (weights, scale): precision = weights x scale.

        Homoscedastic PPCA keeps the 0/1 mask as weights and folds 1/sigma^2 into the small
        K x K products, so no extra (B, D) array is made.
        """
        return block["obs"], 1.0 / self._s2

    def _log_noise(self, block) -> torch.Tensor:
        """Per row: sum over observed pixels of log(noise variance)."""
        return block["n_obs"] * math.log(self._s2)

    def _initialise(self, X: np.ndarray, rng: np.random.Generator, counts: np.ndarray) -> None:
        """Column means and a randomised SVD of mean-filled rows (a subset of at most 20k)."""
        n = X.shape[0]
        k, d = self.n_components, len(self._cols)
        sums = np.zeros(d)
        for start in range(0, n, self.batch_size):
            sums += np.nansum(X[start:start + self.batch_size][:, self._cols], axis=0,
                              dtype=np.float64)
        mean = (sums / counts).astype(np.float32)
        rows = np.sort(rng.choice(n, min(n, 20000), replace=False))
        sub = X[rows][:, self._cols] - mean
        a = torch.as_tensor(np.where(np.isfinite(sub), sub, 0.0), device=self._device)
        q = min(k + 10, min(a.shape))
        gen = torch.Generator(device="cpu").manual_seed(self.random_state)
        _, s, v = _randomised_svd(a, q, gen)
        var = (s ** 2 / len(rows)).double()
        total = float(a.double().square().sum() / len(rows))
        s2 = max((total - float(var[:k].sum())) / max(d - k, 1), 1e-8 * max(total / d, 1e-30))
        scale = torch.sqrt(torch.clamp(var[:k] - s2, min=s2 * 1e-3)).float()
        self._w = (v[:, :k] * scale).to(self._device)
        self._mu = torch.as_tensor(mean, dtype=torch.float32, device=self._device)
        self._s2 = float(s2)

    def _e_step(self, block):
        """Posterior of z for one block: mean (B,K), covariance (B,K,K), weights, scale,
        residual to the mean (0 where missing) and per-row log-likelihood."""
        k = self.n_components
        w, mu = self._w, self._mu
        i, j, slot = self._tri
        weights, scale = self._precision(block)
        ww = w[:, i] * w[:, j]                                    # (D, T)
        m = (weights @ ww)[:, slot] * scale                       # (B, K, K)
        m = m + torch.eye(k, device=m.device)
        chol = torch.linalg.cholesky(m)
        resid = (block["x"] - mu) * block["obs"]
        weighted_resid = resid * weights if self.weighted else resid
        h = (weighted_resid @ w) * scale                          # (B, K)
        ez = torch.cholesky_solve(h.unsqueeze(-1), chol).squeeze(-1)
        cov = torch.cholesky_inverse(chol)
        logdet_c = self._log_noise(block) \
            + 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(1)
        block["resid2"] = (weighted_resid * resid).sum(1)        # reused by the M-step
        quad = block["resid2"] * scale - (h * ez).sum(1)
        loglike = -0.5 * (block["n_obs"] * math.log(2 * math.pi) + logdet_c + quad)
        return ez, cov, weights, scale, resid, loglike

    def _run_em(self, X, errors, rows) -> None:
        k = self.n_components
        d = len(self._cols)
        self._tri = _triu(k, self._device)
        ia, ja, slot_a = _triu(k + 1, self._device)
        previous = -math.inf
        bar = progress(range(self.max_iter), desc=f"PPCA EM ({len(rows)} rows)", leave=False)
        for _ in bar:
            a_acc = torch.zeros(d, len(ia), dtype=torch.float64, device=self._device)
            b_acc = torch.zeros(d, k + 1, dtype=torch.float64, device=self._device)
            s2_num = s2_den = 0.0
            loglike_sum, count = 0.0, 0.0
            for _, _, block in self._blocks(X, errors, rows):
                ez, cov, weights, scale, resid, loglike = self._e_step(block)
                loglike_sum += float(loglike.sum(dtype=torch.float64))
                count += float(block["n_obs"].sum(dtype=torch.float64))
                ez1 = torch.cat([ez, torch.ones_like(ez[:, :1])], 1)        # z~ = [z, 1]
                szz = cov + ez.unsqueeze(2) * ez.unsqueeze(1)
                s_full = ez1.unsqueeze(2) * ez1.unsqueeze(1)
                s_full[:, :k, :k] = szz
                # normal equations of [w_d, mu_d - old mu_d]: residuals keep sums well scaled
                weighted_resid = resid * weights if self.weighted else resid
                a_acc += (weights.T @ s_full[:, ia, ja]).double()
                b_acc += (weighted_resid.T @ ez1).double()
                if self.weighted:
                    num, den = self._noise_terms(block, ez, cov, weights, resid)
                    s2_num += num
                    s2_den += den
                else:
                    s2_num += float(block["resid2"].sum(dtype=torch.float64))
            mean_loglike = loglike_sum / count
            self.loglike_.append(mean_loglike)
            self.n_iter_ += 1
            bar.set_postfix(loglike=f"{mean_loglike:.6f}")
            converged = mean_loglike - previous < self.tol
            previous = mean_loglike
            # M-step: per-pixel (K+1) x (K+1) normal equations A_d [w_d; dmu_d] = b_d.
            sol = torch.linalg.solve(a_acc[:, slot_a], b_acc.unsqueeze(-1)).squeeze(-1)
            if self.weighted:
                self._s2 = max(self._s2 * s2_num / s2_den, 1e-12)
            else:  # expected residual sum: sum r^2 - sum_d [w_d, dmu_d] . b_d (b without 1/s2)
                self._s2 = max((s2_num - float((sol * b_acc).sum())) / count, 1e-12)
            self._w = sol[:, :k].float()
            self._mu = self._mu + sol[:, k].float()
            if converged:
                break
        logger.debug("PPCA stage on %d rows: %d iterations, loglike %.6f", len(rows),
                     self.n_iter_, self.loglike_[-1])

    def _finalise(self) -> None:
        """Rotate W to orthonormal principal axes sorted by variance, with a fixed sign."""
        w = self._w.double().cpu()
        u, s, _ = torch.linalg.svd(w, full_matrices=False)
        sign = torch.sign(u[torch.argmax(u.abs(), 0), torch.arange(u.shape[1])])
        u = u * sign
        d = len(self.used_features_)
        self.components_ = np.zeros((self.n_components, d), np.float32)
        self.components_[:, self._cols] = u.T.numpy()
        self.noise_variance_ = float(self._s2)
        self.explained_variance_ = (s.square() + self._s2).numpy()
        self.mean_ = np.zeros(d, np.float32)
        self.mean_[self._cols] = self._mu.cpu().numpy()
        self._w = (u * s).float().to(self._device)
        logger.info("PPCA: K=%d, %d iterations, noise variance %.3g", self.n_components,
                    self.n_iter_, self.noise_variance_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit first")
        if not hasattr(self, "_tri") or not hasattr(self, "_device"):
            self._device = resolve_device(self.device)
            self._tri = _triu(self.n_components, self._device)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Fitted arrays for saving (safetensors); :meth:`from_state` rebuilds the model."""
        self._check_fitted()
        return {"components": self.components_, "explained_variance": self.explained_variance_,
                "mean": self.mean_, "noise_variance": np.array([self.noise_variance_]),
                "used_features": self.used_features_.astype(np.uint8)}

    def truncated(self, k: int) -> "PPCA":
        """This model cut to its first ``k`` components, for scans over K without refitting.

        Without missing data PPCA subspaces are nested (Tipping & Bishop 1999), so this is the
        K=k solution up to the missing-pixel corrections; the variance of the dropped
        components joins the noise: ``sigma_k^2 = (sigma^2 (D-K) + sum_{j>k} lambda_j)/(D-k)``.
        """
        self._check_fitted()
        if not 0 < k <= self.n_components:
            raise ValueError(f"k must be in 1..{self.n_components}, got {k}")
        state = self.state()
        d = int(self.used_features_.sum())
        dropped = float(self.explained_variance_[k:].sum())
        noise = (self.noise_variance_ * (d - self.n_components) + dropped) / (d - k)
        state.update(components=state["components"][:k],
                     explained_variance=state["explained_variance"][:k],
                     noise_variance=np.array([noise]))
        return type(self).from_state(state, device=self.device)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], **params) -> "PPCA":
        model = cls(n_components=len(state["explained_variance"]), **params)
        model.components_ = np.asarray(state["components"], np.float32)
        model.explained_variance_ = np.asarray(state["explained_variance"], np.float64)
        model.mean_ = np.asarray(state["mean"], np.float32)
        model.noise_variance_ = float(state["noise_variance"][0])
        model.used_features_ = np.asarray(state["used_features"]).astype(bool)
        model._cols = np.flatnonzero(model.used_features_)
        model._device = resolve_device(model.device)
        model._s2 = model.noise_variance_
        scale = np.sqrt(np.maximum(model.explained_variance_ - model.noise_variance_, 0.0))
        model._w = torch.as_tensor(model.components_[:, model._cols].T * scale.astype(np.float32),
                                   device=model._device)
        model._mu = torch.as_tensor(model.mean_[model._cols], device=model._device)
        return model


class WeightedPPCA(PPCA):
    """PPCA with heteroscedastic noise: pixel variance ``sigma^2 + err_nd^2``.

    The error-weighted variant de Mijolla & Ness (2022, Sect. 6) name as future work: a noisy
    pixel pulls less on the components and on a star's latents than a precise one, instead of
    being either fully trusted or censored. ``fit(X, errors=E)`` and ``transform(X, errors=E)``
    take the 1-sigma uncertainties of ``X`` (same shape). ``sigma^2`` (the scatter the
    K-dimensional model does not explain) is updated by the fixed point
    ``sigma^2 <- sigma^2 sum(r/v^2) / sum(1/v)`` with ``v = sigma^2 + err^2`` and ``r`` the
    expected squared residual, which reduces to the PPCA M-step when all errors are zero.
    """

    weighted = True

    def _precision(self, block) -> tuple[torch.Tensor, float]:
        return block["obs"] / (self._s2 + block["err2"]), 1.0

    def _log_noise(self, block) -> torch.Tensor:
        return (block["obs"] * torch.log(self._s2 + block["err2"])).sum(1)

    def _noise_terms(self, block, ez, cov, prec, resid) -> tuple[float, float]:
        i, j, _ = self._tri
        w = self._w
        off = torch.where(i == j, 1.0, 2.0)
        spread = (cov[:, i, j] * off) @ (w[:, i] * w[:, j]).T     # w_d^T Cov_n w_d
        resid2 = (resid - ez @ w.T).square() + spread
        return (float((prec.square() * resid2).sum(dtype=torch.float64)),
                float(prec.sum(dtype=torch.float64)))


def _randomised_svd(a: torch.Tensor, q: int, gen: torch.Generator):
    """Top-q singular triplets of ``a`` by randomised subspace iteration (Halko et al. 2011)."""
    omega = torch.randn(a.shape[1], q, generator=gen).to(a.device, a.dtype)
    y = a @ omega
    for _ in range(3):
        y, _ = torch.linalg.qr(y)
        y = a @ (a.T @ y)
    basis, _ = torch.linalg.qr(y)
    u, s, vt = torch.linalg.svd(basis.T @ a, full_matrices=False)
    return basis @ u, s, vt.T
