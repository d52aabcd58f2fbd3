"""Probabilistic PCA with missing pixels, fitted by exact EM over row blocks.

Why a new implementation: APOGEE spectra have censored pixels (sky lines, chip gaps,
interstellar windows) that differ from star to star, and the reference code's PPCA loops over
stars in Python. Here each EM quantity is a few matrix products over a block of rows.

Model (Tipping & Bishop 1999): ``x = W z + mu + eps``, ``z ~ N(0, I_K)``,
``eps_d ~ N(0, sigma^2 + err_d^2)``; missing pixels are marginalised out (exact EM, not
imputation; Ilin & Raiko 2010, JMLR 11, 1957, Sect. 3.2).

Algorithm. Pixels observed in fewer than ``min_observed`` rows are dropped
(``used_features_``, e.g. the chip gaps). The rest are centred once per stage and missing
values set to zero, so the data enter only through ``x_n [W, mu]`` (E-step) and
``X^T E[z~]`` (M-step, ``z~ = [z, 1]``): two dense products, 2 N D (K+1) multiply-adds per
iteration. Exact EM also needs, per star, the K x K precision
``M_n = I + (1/sigma^2) sum_{d observed in n} w_d w_d^T`` and, per pixel, the
(K+1) x (K+1) normal equations ``A_d = sum_{n observing d} E[z~ z~^T]``. Only a few percent of
the used pixels are missing in a star, so both are computed as a sum over everything (one
K x K matrix) minus a sparse sum over the missing entries: two CSR x dense products of
~nnz (K+1)(K+2)/2 multiply-adds each, nnz = number of missing entries, instead of two dense
ones of N D (K+1)(K+2)/2 over the 0/1 mask. Blocks missing more than ``sparse_below`` of their
entries, and :class:`WeightedPPCA` (weights not 0/1), use the dense products. The K x K and
(K+1) x (K+1) systems are solved with batched Cholesky factorisations. After each M-step, the
latent mean and covariance are refitted and folded into ``mu`` and ``W`` (parameter-expanded
EM, Liu, Rubin & Wu 1998): same likelihood, but without plain EM's slow drift of the scale of
``W`` when sigma^2 is small.

Initialisation: column means of the observed values, then the top eigenvectors of a
covariance estimate corrected for the missing pixels (:meth:`PPCA._initialise`), by three
steps of randomised subspace iteration (Halko et al. 2011).

Convergence rule: each iteration first evaluates the mean log-likelihood per observed value of
the current parameters (E-step); EM stops there, keeping those parameters, when it rose by less
than ``tol`` nats since the previous iteration, or after ``max_iter`` iterations. With
``warm_rows`` set and more rows than that, EM first converges on a fixed random subset of
``warm_rows`` rows (same rule), then continues on all rows: the subset solution is already
close, so only a few full passes are needed.

Memory: the centred, zero-filled copy of a stage's used pixels (and its missing entries) is
kept between iterations when it takes at most 2 GiB; larger stages are rebuilt from ``X`` in
blocks of ``batch_size`` rows on every pass, so memory stays at a few blocks plus the
posteriors, ~K^2 floats per row.

References:
    Tipping & Bishop (1999), J. R. Stat. Soc. B 61, 611.
    Liu, Rubin & Wu (1998), "Parameter expansion to accelerate EM: the PX-EM algorithm",
    Biometrika 85, 755.
    Ilin & Raiko (2010), "Practical approaches to principal component analysis in the presence
    of missing values", JMLR 11, 1957.
    Halko, Martinsson & Tropp (2011), SIAM Review 53, 217.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import scipy.sparse
import torch

from ..errors import SpecsiftInputError
from ..runtime import DEFAULT_DEVICE, progress, resolve_device

__all__ = ["PPCA", "WeightedPPCA"]

logger = logging.getLogger("specsift.metric")

_CACHE_BYTES = 2 ** 31  # largest centred copy of a stage kept in memory between iterations
_CHUNK = 255  # rows per piece of the elementwise passes over X, sized for the CPU cache
_ALIGN = 16  # widths of the packed products are padded to this many floats (SIMD-friendly)


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


class _Packing:
    """Packed upper triangle of (K+1) x (K+1) symmetric matrices, padded to an aligned width
    (``index_select`` does the gathers: much faster than advanced indexing on CPU)."""

    def __init__(self, k: int, device):
        self.k = k
        self.i, self.j = torch.triu_indices(k + 1, k + 1, device=device)
        self.flat = self.i * (k + 1) + self.j
        n = len(self.i)
        self.width = _padded(n)
        slot = torch.empty(k + 1, k + 1, dtype=torch.long, device=device)
        slot[self.i, self.j] = torch.arange(n, device=device)
        slot[self.j, self.i] = torch.arange(n, device=device)
        self.slot = slot.flatten()

    def outer(self, a: torch.Tensor) -> torch.Tensor:
        """Packed ``a_r a_r^T`` of each row of ``a`` (R, K+1) -> (R, width)."""
        out = a.new_zeros(a.shape[0], self.width)
        torch.mul(a.index_select(1, self.i), a.index_select(1, self.j), out=out[:, :len(self.i)])
        return out

    def pack(self, m: torch.Tensor) -> torch.Tensor:
        """(R, K+1, K+1) -> (R, width)."""
        out = m.new_zeros(m.shape[0], self.width)
        torch.index_select(m.reshape(len(m), -1), 1, self.flat, out=out[:, :len(self.i)])
        return out

    def unpack(self, p: torch.Tensor) -> torch.Tensor:
        """(R, width) -> (R, K+1, K+1)."""
        return p.index_select(1, self.slot).view(len(p), self.k + 1, self.k + 1)


class PPCA:
    """Probabilistic PCA for data with missing values (NaN), scikit-learn style.

    Arguments:
        n_components: number of latent dimensions K.
        max_iter: maximum number of EM iterations (per stage).
        tol: convergence threshold on the rise of the mean log-likelihood per observed value.
        random_state: seed of the initialisation and of the warm-start subset.
        batch_size: rows per block of the E- and M-step products (bounds their temporaries).
        warm_rows: converge first on this many random rows (None: always use every row).
        min_observed: pixels observed in fewer rows are left out of the model.
        device: torch device (``"auto"``: CUDA when present).

    Fitted attributes: ``components_`` (K, D) orthonormal principal axes (rows, zero for
    unused pixels), ``explained_variance_`` (K,), ``mean_`` (D,), ``noise_variance_``,
    ``loglike_`` (mean log-likelihood per observed value of each parameter set visited),
    ``n_iter_`` (E-steps, all stages), ``used_features_`` (D,) bool.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 40)).astype(np.float32)
        >>> X[X > 2] = np.nan
        >>> model = PPCA(n_components=3, random_state=0).fit(X)
        >>> model.transform(X).shape
        (200, 3)
    """

    weighted = False
    # Blocks with at most this fraction of missing entries (among the used pixels) sum over
    # the missing entries with sparse products; above it dense products over the 0/1 mask are
    # faster (measured break-even ~0.1 on a 2-core AMD EPYC, K=30).
    sparse_below = 0.1

    def __init__(self, n_components: int = 30, max_iter: int = 200, tol: float = 1e-5,
                 random_state: int = 0, batch_size: int = 4096, warm_rows: int | None = 20000,
                 min_observed: int | None = None, device: str = DEFAULT_DEVICE):
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
        if k < 1:
            raise SpecsiftInputError(f"n_components must be at least 1, got {k}")
        if self.min_observed is None and n < k + 2:
            raise SpecsiftInputError(f"{k} components need at least {k + 2} stars observed in "
                                     f"each pixel; there are {n} stars")
        counts, sums = self._column_stats(X)
        self.used_features_ = counts >= (self.min_observed or k + 2)
        if self.used_features_.sum() <= k:
            raise SpecsiftInputError(f"only {self.used_features_.sum()} pixels are observed often "
                                     f"enough for {k} components")
        self._cols = np.flatnonzero(self.used_features_)
        self._packing = _Packing(k, self._device)
        self._mu = torch.as_tensor(sums[self._cols] / counts[self._cols], dtype=torch.float32,
                                   device=self._device)
        rng = np.random.default_rng(self.random_state)
        stages = [np.arange(n)]
        if self.warm_rows and n > self.warm_rows:
            stages.insert(0, np.sort(rng.choice(n, self.warm_rows, replace=False)))
        self.loglike_ = []
        self.n_iter_ = 0
        for number, rows in enumerate(stages):
            center = self._mu.clone()
            blocks = self._stage(X, errors, rows, center)
            if number == 0:
                self._initialise(blocks, len(rows))
            self._run_em(blocks, center, len(rows))
        self._finalise()
        return self

    def transform(self, X, errors=None) -> np.ndarray:
        """Posterior-mean latents E[z | observed pixels] (N, K), each row with its own mask."""
        self._check_fitted()
        X = self._check_input(X, errors, fitted=True)
        out = np.empty((X.shape[0], self.n_components), np.float32)
        params = self._parameters(self._mu)
        start = 0
        for block in self._blocks(X, errors, np.arange(X.shape[0]), self._mu):
            ez, *_ = self._e_step(block, params)
            out[start:start + len(ez)] = ez.cpu().numpy()
            start += len(ez)
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
        params = self._parameters(self._mu)
        total, count = 0.0, 0.0
        for block in self._blocks(X, errors, np.arange(X.shape[0]), self._mu):
            _, _, loglike, _ = self._e_step(block, params)
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

    def _column_stats(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: number of rows observing it and the sum of its observed values."""
        counts = np.zeros(X.shape[1], np.int64)
        sums = np.zeros(X.shape[1])
        for start in range(0, X.shape[0], _CHUNK):  # _CHUNK < 256: uint8 counts cannot wrap
            x = X[start:start + _CHUNK]
            counts += np.add.reduce(np.isfinite(x).view(np.uint8), axis=0, dtype=np.uint8)
            sums += torch.nansum(_tensor(x), 0).numpy()
        infinite = np.flatnonzero(~np.isfinite(sums))   # +-inf values, rare: leave them out
        for col in infinite:
            values = X[:, col]
            sums[col] = values[np.isfinite(values)].sum(dtype=np.float64)
        return counts, sums

    def _blocks(self, X, errors, rows, center: torch.Tensor):
        """Yield the blocks of ``rows`` (:meth:`_prepare`) in order."""
        center = center.cpu().numpy()
        for start in range(0, len(rows), self.batch_size):
            yield self._prepare(X, errors, rows[start:start + self.batch_size], center)

    def _prepare(self, X, errors, idx: np.ndarray, center: np.ndarray) -> dict:
        """One block of rows: used pixels minus ``center``, zero where missing, and the missing
        entries, either sparse (:func:`_missing_entries`) or as a dense 0/1 observed mask."""
        x = np.empty((len(idx), len(self._cols)), np.float32)
        xx = np.empty(len(idx), np.float32)
        col_sq = np.zeros(len(self._cols))
        rows, cols = [], []
        for start in range(0, len(idx), _CHUNK):       # cache-sized pieces
            part = x[start:start + _CHUNK]
            np.take(_take_rows(X, idx[start:start + _CHUNK]), self._cols, axis=1, out=part,
                    mode="clip")
            part -= center
            missing = np.flatnonzero(~np.isfinite(part))  # faster than a 2-D np.nonzero
            part.reshape(-1)[missing] = 0.0
            r, c = np.divmod(missing, part.shape[1])
            square = np.square(part)
            xx[start:start + _CHUNK] = square.sum(1)
            col_sq += square.sum(0)
            rows.append(r + start)
            cols.append(c)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        n_obs = len(self._cols) - np.bincount(rows, minlength=len(idx))
        if (n_obs == 0).any():
            raise SpecsiftInputError("every pixel of this spectrum is missing",
                                     row=int(idx[np.argmax(n_obs == 0)]))
        device = self._device
        block = {"x": torch.as_tensor(x, device=device),
                 "n_obs": torch.as_tensor(n_obs, dtype=torch.float32, device=device),
                 "col_sq": col_sq,
                 "col_obs": len(idx) - np.bincount(cols, minlength=len(self._cols))}
        if not self.weighted and len(rows) <= self.sparse_below * x.size:
            block.update(_missing_entries(rows, cols, x.shape, device),
                         xx=torch.as_tensor(xx, dtype=torch.float64, device=device))
            return block
        obs = np.ones_like(x)
        obs[rows, cols] = 0.0
        block["obs"] = torch.as_tensor(obs, device=device)
        if self.weighted:
            err2 = np.square(np.take(_take_rows(errors, idx), self._cols, axis=1), dtype=np.float32)
            err2[~np.isfinite(err2)] = 0.0
            err2[rows, cols] = 0.0
            block["err2"] = torch.as_tensor(err2, device=device)
        return block

    def _stage(self, X, errors, rows, center: torch.Tensor):
        """Callable returning the stage's blocks: kept in memory if small, else rebuilt."""
        if len(rows) * len(self._cols) * 4 <= _CACHE_BYTES:
            blocks = list(self._blocks(X, errors, rows, center))
            return lambda: blocks
        return lambda: self._blocks(X, errors, rows, center)

    # ------------------------------------------------------------------ EM core
    def _parameters(self, center: torch.Tensor) -> dict:
        """Per-pixel rows ``g_d = [w_d, mu_d - center_d]`` and their packed outer products."""
        k = self.n_components
        g = torch.zeros(len(self._cols), _padded(k + 1), device=self._device)
        g[:, :k] = self._w
        g[:, k] = self._mu - center
        g64 = g[:, :k + 1].double()
        return {"g": g, "gg": self._packing.outer(g[:, :k + 1]), "delta": g[:, k],
                "gram": g64.T @ g64}

    def _weights(self, block) -> torch.Tensor:
        """Per-pixel noise precision (B, D), zero where missing."""
        return block["obs"] / self._s2

    def _star_gram(self, block, params):
        """Per row, weighted by the noise precision: the Gram matrix of ``g_d`` over the
        observed pixels as a part common to all rows (float64, or None) plus a per-row part
        (B, K+1, K+1), the data projected on ``g`` and the squared data norm. In a sparse
        block the common part is the Gram of all pixels and the per-row part minus a sparse
        product over the missing ones; it is small, so float32 does not limit precision."""
        pk = self._packing
        if "miss" in block:
            scale = 1.0 / self._s2
            return (params["gram"] * scale, pk.unpack(block["miss"] @ params["gg"]) * -scale,
                    (block["x"] @ params["g"]).double() * scale, block["xx"] * scale)
        weights = self._weights(block)
        wx = weights * block["x"]
        return (None, pk.unpack(weights @ params["gg"]), (wx @ params["g"]).double(),
                (wx * block["x"]).sum(1, dtype=torch.float64))

    def _pixel_sums(self, block, s: torch.Tensor, z1: torch.Tensor, acc: dict) -> None:
        """Add, per pixel and weighted by the noise precision, the sums over the rows observing
        it of packed ``E[z~ z~^T]`` (``acc["a"]``) and of the data times ``z~`` (``acc["b"]``).
        In a sparse block the first is the sum over all rows (``acc["all"]``, the same for
        every pixel) minus a sparse product over the rows missing the pixel."""
        if "miss" in block:
            scale = 1.0 / self._s2
            acc["all"] += s.sum(0).double() * scale
            acc["a"].addmm_(block["miss_t"], s, alpha=-scale)
            acc["b"].addmm_(block["x"].T, z1, alpha=scale)
        else:
            weights = self._weights(block)
            acc["a"].addmm_(weights.T, s)
            acc["b"].addmm_((weights * block["x"]).T, z1)

    def _log_noise(self, block) -> torch.Tensor:
        """Per row: sum over observed pixels of log(noise variance)."""
        return block["n_obs"].double() * math.log(self._s2)

    def _e_step(self, block, params):
        """Posterior of z for one block: mean (B, K), Cholesky factor of the precision,
        per-row log-likelihood and precision-weighted squared residual to the mean.

        The log-likelihood is a small difference of terms ~ signal/noise times larger, so
        float32 rounding of ``h^T M^-1 h`` would leave ~1e-6 nats of noise per value, more
        than the changes that decide convergence. It is evaluated in float64 as
        ``max_z 2 h.z - z^T M z`` at the float32 solution ``z``, whose error then enters
        only at second order."""
        k = self.n_components
        base, extra, proj, xx = self._star_gram(block, params)
        if base is None:
            base = torch.zeros(k + 1, k + 1, dtype=torch.float64, device=extra.device)
        precision = extra[:, :k, :k] + (base[:k, :k] + torch.eye(k, device=base.device)).float()
        chol = torch.linalg.cholesky(precision)
        h = proj[:, :k] - base[:k, k] - extra[:, :k, k].double()
        ez = torch.cholesky_solve(h.float().unsqueeze(-1), chol).squeeze(-1)
        z = ez.double()
        quad_z = (z * z).sum(1) + ((z @ base[:k, :k]) * z).sum(1) \
            + (ez.unsqueeze(1) @ extra[:, :k, :k] @ ez.unsqueeze(2)).flatten().double()
        resid2 = xx - 2 * proj[:, k] + base[k, k] + extra[:, k, k].double()
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(1)
        quad = resid2 - 2 * (h * z).sum(1) + quad_z                # quad_z = z^T M z
        loglike = -0.5 * (block["n_obs"].double() * math.log(2 * math.pi)
                          + self._log_noise(block) + logdet.double() + quad)
        return ez, chol, loglike, resid2

    def _run_em(self, blocks, center: torch.Tensor, n_rows: int) -> None:
        """EM on one stage until the convergence rule of the module docstring holds."""
        previous = -math.inf
        bar = progress(range(self.max_iter), desc=f"PPCA EM ({n_rows} rows)", leave=False)
        for _ in bar:
            params = self._parameters(center)
            posteriors, total, count, resid2 = [], 0.0, 0.0, 0.0
            for block in blocks():
                ez, chol, loglike, r2 = self._e_step(block, params)
                posteriors.append((ez, chol))
                total += float(loglike.sum())
                count += float(block["n_obs"].sum(dtype=torch.float64))
                resid2 += float(r2.sum())
            mean_loglike = total / count
            self.loglike_.append(mean_loglike)
            self.n_iter_ += 1
            bar.set_postfix(loglike=f"{mean_loglike:.6f}")
            if mean_loglike - previous < self.tol:
                break
            previous = mean_loglike
            self._m_step(blocks, posteriors, params, resid2, count)
        logger.debug("PPCA stage on %d rows: %d iterations, loglike %.6f", n_rows,
                     self.n_iter_, self.loglike_[-1])

    def _m_step(self, blocks, posteriors, params, resid2: float, count: float) -> None:
        """Per-pixel (K+1) x (K+1) normal equations ``A_d [w_d; dmu_d] = b_d``, and sigma^2."""
        k, d = self.n_components, len(self._cols)
        pk = self._packing
        acc = {"a": torch.zeros(d, pk.width, device=self._device),
               "b": torch.zeros(d, _padded(k + 1), device=self._device),
               "all": torch.zeros(pk.width, dtype=torch.float64, device=self._device)}
        noise = [0.0, 0.0]
        moments = torch.zeros(pk.width, dtype=torch.float64, device=self._device)
        for block, (ez, chol) in zip(blocks(), posteriors):
            cov = torch.cholesky_inverse(chol)
            z1 = torch.zeros(len(ez), acc["b"].shape[1], device=ez.device)   # z~ = [z, 1]
            z1[:, :k] = ez
            z1[:, k] = 1.0
            s = z1[:, :k + 1, None] * z1[:, None, :k + 1]
            s[:, :k, :k] += cov
            s = pk.pack(s)
            moments += s.sum(0).double()
            self._pixel_sums(block, s, z1, acc)
            if self.weighted:
                for i, term in enumerate(self._noise_terms(block, ez, cov, params)):
                    noise[i] += term
        a = pk.unpack((acc["a"].double() + acc["all"]).float())
        # b_d = sum_n p_nd (x_nd - mu_d) z~_n; the blocks hold x - center = x - mu + delta
        b = acc["b"][:, :k + 1].double() - params["delta"].double()[:, None] * a[:, k].double()
        sol = _solve_spd(a, b)
        if self.weighted:
            self._s2 = max(self._s2 * noise[0] / noise[1], 1e-12)
        else:  # expected residual sum: sum r^2 - sum_d [w_d, dmu_d] . b_d (both over sigma^2)
            self._s2 = max(self._s2 * (resid2 - float((sol * b).sum())) / count, 1e-12)
        self._expand(sol[:, :k], self._mu.double() + sol[:, k], pk.unpack(moments[None])[0])

    def _expand(self, w: torch.Tensor, mu: torch.Tensor, moments: torch.Tensor) -> None:
        """Parameter-expanded EM (Liu, Rubin & Wu 1998): refit the latent mean and covariance
        from E[z~ z~^T] summed over rows and fold them into ``mu`` and ``W``, which leaves the
        likelihood unchanged but removes the very slow drift of the scale and rotation of W
        that plain EM shows when sigma^2 is small next to the component variances."""
        k = self.n_components
        n = moments[k, k]
        eta = moments[:k, k] / n
        cov = moments[:k, :k] / n - eta[:, None] * eta[None, :]
        self._mu = (mu + w @ eta).float()
        self._w = (w @ torch.linalg.cholesky(cov)).float()

    def _initialise(self, blocks, n_rows: int) -> None:
        """W and sigma^2 from the top eigenvectors of the pairwise-available covariance,
        found by randomised subspace iteration (Halko et al. 2011).

        Mean filling (zeros in the centred data ``Y``) shrinks the covariance by the observed
        fractions and leaves a diagonal excess of the order of the noise, which tilts the weak
        components. If pixel d of row n is seen with probability ``a_n b_d``, the observed
        fraction of pixel d is ``f_d = b_d <a>``, that of a pair ``f_d f_d' kappa`` with
        ``kappa = <a^2> / <a>^2``, so ``F^-1 Y^T Y F^-1 / (n kappa) - diag(c (1 - f kappa) /
        (f kappa))`` (``c = diag(Y^T Y) / (n f)`` the pixel variances) estimates the covariance
        without that bias and starts EM much closer to the optimum."""
        k, d = self.n_components, len(self._cols)
        q = min(_padded(k + 10), d, n_rows)
        blocks = list(blocks())
        f = torch.as_tensor(sum(b["col_obs"] for b in blocks) / n_rows, dtype=torch.float32,
                            device=self._device)
        var = torch.as_tensor(sum(b["col_sq"] for b in blocks) / n_rows, device=self._device)
        var = (var / f).float()                                  # pixel variances c
        seen = torch.cat([b["n_obs"] for b in blocks]).double() / d
        kappa = float(seen.square().mean() / seen.mean() ** 2)
        diag = var * (1 - f * kappa) / (f * kappa)

        def cov_times(v):
            u = v / f[:, None]
            return sum(b["x"].T @ (b["x"] @ u) for b in blocks) \
                / (n_rows * kappa * f[:, None]) - diag[:, None] * v

        gen = torch.Generator(device="cpu").manual_seed(self.random_state)
        v = torch.randn(d, q, generator=gen).to(self._device)
        for _ in range(3):
            v = _orthonormal(cov_times(v))
        y = torch.cat([b["x"] @ (v / f[:, None]) for b in blocks]).double()
        v64 = v.double()
        ritz = y.T @ y / (n_rows * kappa) - v64.T @ (diag.double()[:, None] * v64)
        eigval, eigvec = torch.linalg.eigh(ritz)
        eigval, eigvec = eigval.flip(0)[:k], eigvec.flip(1)[:, :k]
        total = float(var.double().sum())
        # the floor keeps the first E-step's precisions (cond ~ lambda_1 / sigma^2) solvable
        s2 = max((total - float(eigval.sum())) / max(d - k, 1), 1e-6 * max(float(eigval[0]), 1e-30))
        scale = torch.sqrt(torch.clamp(eigval - s2, min=s2 * 1e-3))
        self._w = (v64 @ eigvec * scale).float()
        self._s2 = float(s2)

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
        if not hasattr(self, "_packing") or not hasattr(self, "_device"):
            self._device = resolve_device(self.device)
            self._packing = _Packing(self.n_components, self._device)

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
        model._packing = _Packing(model.n_components, model._device)
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
    The per-pixel weights are not 0/1, so the Gram sums are dense products.
    """

    weighted = True

    def _weights(self, block) -> torch.Tensor:
        return block["obs"] / (self._s2 + block["err2"])

    def _log_noise(self, block) -> torch.Tensor:
        return (block["obs"] * torch.log(self._s2 + block["err2"])).sum(1, dtype=torch.float64)

    def _noise_terms(self, block, ez, cov, params) -> tuple[float, float]:
        """Numerator and denominator of the sigma^2 fixed point (class docstring)."""
        k = self.n_components
        w = params["g"][:, :k]
        i, j = torch.triu_indices(k, k, device=w.device)
        spread = (cov[:, i, j] * torch.where(i == j, 1.0, 2.0)) @ (w[:, i] * w[:, j]).T
        resid = block["x"] - block["obs"] * params["delta"]
        resid2 = (resid - ez @ w.T).square() + spread                # E[(x - W z - mu)^2]
        precision = self._weights(block)
        return (float((precision.square() * resid2).sum(dtype=torch.float64)),
                float(precision.sum(dtype=torch.float64)))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A torch view of a numpy block (a copy only when the array is read-only)."""
    return torch.from_numpy(a if a.flags.writeable else np.array(a))


def _orthonormal(v: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the columns of a tall ``v`` from the eigenvectors of its Gram
    matrix (float64): two matrix products and a tiny eigenproblem instead of a tall QR."""
    v64 = v.double()
    lam, u = torch.linalg.eigh(v64.T @ v64)
    return (v64 @ (u / lam.clamp(min=1e-14 * float(lam[-1])).sqrt())).float()


def _solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve the SPD systems ``a x = b`` (batched, float32 ``a``) by Cholesky, in float32
    except for systems too ill-conditioned for it (pixels seen in very few rows)."""
    chol, info = torch.linalg.cholesky_ex(a)
    sol = torch.cholesky_solve(b.float().unsqueeze(-1), chol).squeeze(-1).double()
    bad = info > 0
    if bad.any():
        sol[bad] = torch.cholesky_solve(b[bad].unsqueeze(-1),
                                        torch.linalg.cholesky(a[bad].double())).squeeze(-1)
    return sol


def _take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (sorted) of ``a``: a view when they are consecutive."""
    return a[idx[0]:idx[-1] + 1] if idx[-1] - idx[0] == len(idx) - 1 else a[idx]


def _missing_entries(rows: np.ndarray, cols: np.ndarray, shape, device) -> dict:
    """Missing entries (ordered by row) as sparse CSR 0/1 matrices, rows x pixels ("miss")
    and pixels x rows ("miss_t")."""
    crow = np.zeros(shape[0] + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    ones = np.ones(len(rows), np.float32)
    by_col = scipy.sparse.csr_matrix((ones, cols, crow), shape=shape).tocsc()
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        for name, (ptr, ind), size in (("miss", (crow, cols), shape),
                                       ("miss_t", (by_col.indptr, by_col.indices), shape[::-1])):
            out[name] = torch.sparse_csr_tensor(
                torch.as_tensor(ptr.astype(np.int32), device=device),
                torch.as_tensor(ind.astype(np.int32), device=device),
                torch.as_tensor(ones, device=device), tuple(size), check_invariants=False)
    return out
