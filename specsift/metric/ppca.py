"""Probabilistic PCA with missing pixels: a fast imputation solver and exact EM, over row blocks.

Why a new implementation: APOGEE spectra have censored pixels (sky lines, chip gaps,
interstellar windows) that differ from star to star, and the reference code's PPCA loops over
stars in Python. Here each step is a few matrix products over a block of rows.

Model (Tipping & Bishop 1999): ``x = W z + mu + eps``, ``z ~ N(0, I_K)``,
``eps_d ~ N(0, sigma^2 + err_d^2)``; missing pixels are marginalised out (Ilin & Raiko 2010,
JMLR 11, 1957, Sect. 3.2). Pixels observed in fewer than ``min_observed`` rows are dropped
(``used_features_``, e.g. the chip gaps). The rest are centred once per stage and missing
values set to zero.

Imputation solver (``solver="impute"``, the default). An EM for the same likelihood whose
complete data are the spectra without gaps and without measurement noise,
``y ~ N(mu, W W^T + sigma^2 I)`` with z integrated out: a measured pixel is ``y_d`` plus noise
of variance ``err_d^2``, a missing one has infinite error. E-step: each ``y`` is replaced by its
conditional mean given the measured pixels, ``a x + (1 - a)(W z + mu)`` with
``a = sigma^2 / (sigma^2 + err^2)`` (0 where missing, 1 without errors) and z the row's
posterior mean. M-step: the closed form of Tipping & Bishop, W from the top K eigenpairs of the
expected complete-data covariance S and sigma^2 the mean of the other eigenvalues.
Why it converges to the exact EM solution: a fixed point of EM under any choice of complete
data is a stationary point of the observed-data likelihood (Dempster, Laird & Rubin 1977), and
the two shortcuts taken leave the fixed point in place. (1) Posterior means are not solved per
row: each iteration takes one step of the Richardson iteration for
``(W^T A W + sigma^2 I) z = W^T A (x - mu)`` (``A = diag(a)``), whose residual is known from
the completed row (:func:`_posterior_step`); its fixed point is the exact posterior mean.
(2) Eigenvectors are not solved per iteration: one step of subspace iteration on S
(Rayleigh-Ritz on q = K+1, padded, directions), which at the fixed point spans S's top
eigenvectors. One term is approximated: S contains the conditional covariance of the completed
values, ``sigma^2 (I - A) + (I - A) W Sigma_n W^T (I - A)`` for row n, and the row's posterior
covariance ``Sigma_n`` (the K x K matrix per row that makes exact EM expensive) is replaced by
the one for each pixel's mean weight, the weights of two pixels averaged as if independent
(:meth:`PPCA._imputed_variance`). The error is of second order, the scatter of the rows'
posterior covariances about that mean, a fraction ~ (missing fraction) K / D of the noise
variance. Measured against exact EM run to convergence on the ``bench/ppca.py`` data
(5,000 x 8,575, K=30), the fixed points agree to 0.002 deg with 4% of the pixels missing and
to 0.05 deg, the precision of that EM run, with 20% missing, at equal log-likelihoods.
An iteration is one pass over the data: ``Y V`` and ``Y^T (Y V)`` (2 N D q multiply-adds) and
the imputation, a sampled product over the missing entries (nnz K; for WeightedPPCA, whose
every pixel is blended, a dense ``Z W^T``).
Stopping rule: a step is measured by how far the columns of the previous W lie outside the new
span (:func:`_rotation`), in units of ``D sigma^2 / N``. For a component of variance lambda
rotated by theta this is ``(theta / theta_s)^2``, ``theta_s ~ sqrt(D sigma^2 / (N lambda))``
the statistical error of its direction, so the unit is what the data can resolve, whatever N.
The solver stops when the distance still to go, estimated from the geometric tail of the
steps, is below ``_STEP_TOL`` (a tenth of the statistical error), or after ``max_iter``.

Exact EM (``solver="em"``) starts from the imputation solution and iterates EM on the
marginal likelihood (not imputation). The data enter only through ``x_n [W, mu]`` (E-step) and
``X^T E[z~]`` (M-step, ``z~ = [z, 1]``). Exact EM also needs, per star, the K x K precision
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
``W`` when sigma^2 is small. Convergence rule: each iteration first evaluates the mean
log-likelihood per observed value of the current parameters (E-step); EM stops there, keeping
those parameters, when it rose by less than ``tol`` nats since the previous iteration, or after
``max_iter`` iterations.

Stages: with ``warm_rows`` set and more rows than that, the imputation solver first converges
(to ``_WARM_TOL``) on a fixed random subset of ``warm_rows`` rows, then continues on all rows,
whose latents start with one E-step: the subset solution is already close, so only a few full
passes are needed.

Memory: the centred copy of a stage's used pixels (and its missing entries) is kept between
iterations when it takes at most 2 GiB; larger stages are rebuilt from ``X`` in blocks of
``batch_size`` rows on every pass (the imputation solver copies only the pixel values again and
keeps the positions of the missing entries, ~12 bytes each), so memory stays at a few blocks
plus ~K floats per row (exact EM keeps the posteriors, ~K^2 floats per row).

References:
    Tipping & Bishop (1999), J. R. Stat. Soc. B 61, 611.
    Dempster, Laird & Rubin (1977), J. R. Stat. Soc. B 39, 1.
    Liu, Rubin & Wu (1998), "Parameter expansion to accelerate EM: the PX-EM algorithm",
    Biometrika 85, 755.
    Ilin & Raiko (2010), "Practical approaches to principal component analysis in the presence
    of missing values", JMLR 11, 1957.
    Halko, Martinsson & Tropp (2011), SIAM Review 53, 217 (subspace iteration).
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
from .defaults import N_COMPONENTS

__all__ = ["PPCA", "WeightedPPCA"]

logger = logging.getLogger("specsift.metric")

_CACHE_BYTES = 2 ** 31  # largest centred copy of a stage kept in memory between iterations
_CHUNK = 255  # rows per piece of the elementwise passes over X, sized for the CPU cache
_ALIGN = 16  # widths of the packed products are padded to this many floats (SIMD-friendly)
_STEP_TOL = 1e-2  # imputation solver: stop ~10% of the statistical error from the fixed point
_WARM_TOL = 0.3  # warm stage: a few tenths of the (errors)^2 by which all rows move its fit
# imputation solver: a block missing more than this fraction is completed by one dense product
# and a gather rather than a sampled product (2,500 x 8,575, K=30: 4% missing 4 vs 6.5 ms,
# 20% missing 27 vs 11 ms)
_GATHER_ABOVE = 0.1
_MAX_RUNS = 64  # used pixels in at most this many contiguous runs are copied by slicing
_SOLVERS = ("impute", "em")


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
        solver: ``"impute"`` (fast; the imputation EM of the module docstring) or ``"em"``
            (exact EM on the marginal likelihood, started from the imputation solution).
        max_iter: maximum number of iterations (per stage and solver phase).
        tol: exact EM's convergence threshold on the rise of the mean log-likelihood per
            observed value (``solver="em"``).
        seed: seed of the initial subspace and of the warm-start subset (scikit-learn's
            ``random_state``; every seed in specsift is called ``seed``).
        batch_size: rows per block of the products (bounds their temporaries).
        warm_rows: converge first on this many random rows (None: always use every row).
        min_observed: pixels observed in fewer rows are left out of the model.
        device: torch device (``"auto"``: CUDA when present).

    Fitted attributes: ``components_`` (K, D) orthonormal principal axes (rows, zero for
    unused pixels), ``explained_variance_`` (K,), ``mean_`` (D,), ``noise_variance_``,
    ``loglike_`` (mean log-likelihood per observed value of each parameter set exact EM
    visited; empty for ``solver="impute"``, see :meth:`score`), ``n_iter_`` (iterations, all
    stages and phases), ``used_features_`` (D,) bool.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 40)).astype(np.float32)
        >>> X[X > 2] = np.nan
        >>> model = PPCA(n_components=3, seed=0).fit(X)
        >>> model.transform(X).shape
        (200, 3)
    """

    weighted = False
    # Blocks with at most this fraction of missing entries (among the used pixels) sum over
    # the missing entries with sparse products; above it dense products over the 0/1 mask are
    # faster (measured break-even ~0.1 on a 2-core AMD EPYC, K=30).
    sparse_below = 0.1

    def __init__(self, n_components: int = N_COMPONENTS, solver: str = "impute",
                 max_iter: int = 200, tol: float = 1e-5, seed: int = 0, batch_size: int = 4096,
                 warm_rows: int | None = 20000, min_observed: int | None = None,
                 device: str = DEFAULT_DEVICE):
        self.n_components = n_components
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.batch_size = batch_size
        self.warm_rows = warm_rows
        self.min_observed = min_observed
        self.device = device

    # ------------------------------------------------------------------ public API
    def fit(self, X, errors=None) -> "PPCA":
        """Fit on ``X`` (N, D) with NaN for missing values; ``errors`` only for WeightedPPCA."""
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
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
        self._runs = _column_runs(self._cols)
        self._packing = _Packing(k, self._device)
        self._mu = torch.as_tensor(sums[self._cols] / counts[self._cols], dtype=torch.float32,
                                   device=self._device)
        rng = np.random.default_rng(self.seed)
        stages = [np.arange(n)]
        if self.warm_rows and n > self.warm_rows:
            stages.insert(0, np.sort(rng.choice(n, self.warm_rows, replace=False)))
        self.loglike_ = []
        self.n_iter_ = 0
        carried = None
        for number, rows in enumerate(stages):
            tol = _STEP_TOL if number == len(stages) - 1 else _WARM_TOL
            carried = self._run_impute(X, errors, rows, carried, tol)
        if self.solver == "em":
            center = self._mu.clone()
            self._run_em(self._stage(X, errors, stages[-1], center), center, n)
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

    def _blocks(self, X, errors, rows, center: torch.Tensor, impute: bool = False):
        """Yield the blocks of ``rows`` (:meth:`_prepare`) in order."""
        center = center.cpu().numpy()
        for start in range(0, len(rows), self.batch_size):
            yield self._prepare(X, errors, rows[start:start + self.batch_size], center, impute)

    def _prepare(self, X, errors, idx: np.ndarray, center: np.ndarray, impute: bool) -> dict:
        """One block of rows: used pixels minus ``center``, zero where missing, with sums over
        the observed values, and the missing entries, either sparse (:func:`_missing_entries`)
        or as a dense 0/1 observed mask. For the imputation solver, whenever the weights are
        0/1, a block holds the flat positions of its missing entries (it is completed in
        place), and also the sparse entries when at most ``_GATHER_ABOVE`` of it is missing;
        for exact EM a block is sparse when at most ``sparse_below`` of it is missing."""
        d = len(self._cols)
        x = np.empty((len(idx), d), np.float32)
        xx = np.empty(len(idx), np.float32)
        n_miss = np.empty(len(idx), np.int64)
        flat, cols = [], []
        self._used_pixels(_take_rows(X, idx), x, center)
        for start in range(0, len(idx), _CHUNK):       # cache-sized pieces
            part = x[start:start + _CHUNK]
            missing = np.flatnonzero(~np.isfinite(part))  # faster than a 2-D np.nonzero
            part.reshape(-1)[missing] = 0.0
            r, c = np.divmod(missing, d)
            xx[start:start + _CHUNK] = np.einsum("ij,ij->i", part, part)
            n_miss[start:start + _CHUNK] = np.bincount(r, minlength=len(part))
            flat.append(missing + start * d)
            cols.append(c.astype(np.int32))
        flat, cols = np.concatenate(flat), np.concatenate(cols)
        n_obs = d - n_miss
        if (n_obs == 0).any():
            raise SpecsiftInputError("every pixel of this spectrum is missing",
                                     row=int(idx[np.argmax(n_obs == 0)]))
        device = self._device
        data = torch.as_tensor(x, device=device)
        block = {"x": data,
                 "n_obs": torch.as_tensor(n_obs, dtype=torch.float32, device=device),
                 "sq": float(xx.sum(dtype=np.float64)),
                 "col_miss": torch.as_tensor(np.bincount(cols, minlength=d), dtype=torch.float64,
                                             device=device)}
        if impute and not self.weighted:
            if len(flat) <= _GATHER_ABOVE * x.size:
                block.update(_missing_entries(n_miss, cols, x.shape, device, transposed=False))
            block["miss_flat"] = torch.as_tensor(flat, device=device)
            return block
        if not self.weighted and len(flat) <= self.sparse_below * x.size:
            block.update(_missing_entries(n_miss, cols, x.shape, device, transposed=True),
                         xx=torch.as_tensor(xx, dtype=torch.float64, device=device))
            return block
        obs = np.ones_like(x)
        obs.reshape(-1)[flat] = 0.0
        block["obs"] = torch.as_tensor(obs, device=device)
        if self.weighted:
            err2 = np.empty_like(x)
            self._used_pixels(_take_rows(errors, idx), err2)
            np.square(err2, out=err2)
            err2[~np.isfinite(err2)] = 0.0
            err2.reshape(-1)[flat] = 0.0
            block["err2"] = torch.as_tensor(err2, device=device)
        return block

    def _used_pixels(self, source: np.ndarray, out: np.ndarray,
                     center: np.ndarray | None = None) -> None:
        """Copy the used pixels of ``source`` rows into ``out``, minus ``center`` if given: by
        slices when they form a few contiguous runs (the chip ranges), several times faster
        than ``np.take``."""
        if self._runs is None:
            np.take(source, self._cols, axis=1, out=out, mode="clip")
            if center is not None:
                out -= center
            return
        subtract = np.subtract
        if source.flags.writeable:                   # torch's threads (numpy: one core)
            source, out, subtract = torch.from_numpy(source), torch.from_numpy(out), torch.sub
            center = None if center is None else torch.from_numpy(center)
        for first, stop, target in self._runs:
            part = out[:, target:target + stop - first]
            if center is None:
                part[...] = source[:, first:stop]
            else:
                subtract(source[:, first:stop], center[target:target + stop - first], out=part)

    def _stage(self, X, errors, rows, center: torch.Tensor, impute: bool = False):
        """Callable returning the stage's blocks: kept in memory if small, else rebuilt from
        ``X`` on every pass. For the imputation solver (0/1 weights) a rebuilt block keeps
        all but its data from the first pass, so a pass only copies and centres the pixels:
        the missing ones are overwritten by the imputation."""
        if len(rows) * len(self._cols) * 4 <= _CACHE_BYTES:
            blocks = list(self._blocks(X, errors, rows, center, impute))
            return lambda: blocks
        if not impute or self.weighted:
            return lambda: self._blocks(X, errors, rows, center, impute)
        starts = range(0, len(rows), self.batch_size)
        kept = [None] * len(starts)
        numpy_center = center.cpu().numpy()
        buffer = np.empty((min(self.batch_size, len(rows)), len(self._cols)), np.float32)

        def blocks():
            for number, start in enumerate(starts):
                idx = rows[start:start + self.batch_size]
                if kept[number] is None:
                    block = self._prepare(X, errors, idx, numpy_center, impute)
                    kept[number] = {key: v for key, v in block.items() if key != "x"}
                    yield block
                    continue
                x = buffer[:len(idx)]
                self._used_pixels(_take_rows(X, idx), x, numpy_center)
                yield dict(kept[number], x=torch.as_tensor(x, device=self._device))
        return blocks

    # ------------------------------------------------------------------ imputation solver
    def _run_impute(self, X, errors, rows: np.ndarray, carried, tol: float) -> tuple:
        """The imputation solver (module docstring) on one stage until its stopping rule holds
        at ``tol``. ``carried``: the previous stage's basis, rows, latents and convergence
        rate (None on the first stage, which starts from a random basis and mean filling).
        Returns the same for the next stage."""
        k, d, n = self.n_components, len(self._cols), len(rows)
        center = self._mu.clone()
        blocks = self._stage(X, errors, rows, center, impute=True)
        z = torch.zeros(n, k, device=self._device)
        # the dense completed block, kept for the stage (a new one each pass would be paged in
        # anew: 10-20 ms per pass for 2,500 x 8,575); never touched when blocks are sparse
        buffer = torch.empty(min(self.batch_size, n), d, device=self._device)
        if carried is None:
            gen = torch.Generator(device="cpu").manual_seed(self.seed)
            basis = torch.randn(d, min(_padded(k + 1), d, n), generator=gen).to(self._device)
            basis = _orthonormal(basis)
            self._w = torch.zeros(d, k, device=self._device)
            self._s2 = math.inf                    # no model yet: measured pixels are exact
            rate = 1.0
        else:
            basis, previous_rows, previous_z, rate = carried
            z[torch.as_tensor(np.searchsorted(rows, previous_rows), device=self._device)] = \
                previous_z
        bar = progress(range(self.max_iter), desc=f"PPCA imputation ({n} rows)", leave=False)
        steps, remaining = [], math.inf
        for _ in bar:
            sweep = self._impute_sweep(blocks, z, basis, center, buffer,
                                       refresh=carried is not None and not steps)
            w_old = self._w
            basis, z = self._ritz(sweep, basis, center, z)
            self.n_iter_ += 1
            steps.append(n * _rotation(w_old, self._w) / (d * self._s2))
            # geometric tail of the steps, the rate taken over two (they alternate in size);
            # until a stage has its own, the previous stage's (more rows converge faster).
            # A stage's first step is small whatever the distance (W follows the basis one
            # iteration late), so it cannot end the stage.
            if len(steps) > 3:
                rate = min((steps[-1] / steps[-3]) ** 0.25, 1.0)
            remaining = steps[-1] * (rate / (1 - rate)) ** 2 \
                if rate < 1 and len(steps) > 2 else math.inf
            bar.set_postfix(remaining=f"{remaining:.2e}")
            if remaining < tol:
                break
        if remaining < tol:
            logger.debug("PPCA imputation on %d rows: %d iterations, %.2e from the fixed point",
                         n, self.n_iter_, remaining)
        else:
            logger.warning("PPCA imputation on %d rows stopped at max_iter=%d, an estimated "
                           "%.2g (squared statistical errors) from its fixed point, above %.2g; "
                           "a larger max_iter fits closer", n, self.max_iter, remaining, tol)
        return basis, rows, z, rate

    def _impute_sweep(self, blocks, z: torch.Tensor, basis: torch.Tensor, center: torch.Tensor,
                      buffer: torch.Tensor, refresh: bool) -> dict:
        """One pass: complete each block from the current model (:meth:`_impute`), then sum
        ``Y V``, ``Y^T Y V``, the column sums and squares of Y, and the missing weights per
        pixel and per row. With ``refresh`` (a stage's first pass from the previous stage's
        model, its new rows at z = 0) each block's latents first take one E-step (in place in
        ``z``) and the block is completed again from them."""
        d, q = len(self._cols), basis.shape[1]
        sweep = {"p": torch.empty(len(z), q, device=self._device),
                 "q": torch.zeros(d, q, device=self._device),
                 "sum": torch.zeros(d, device=self._device), "sq": 0.0,
                 "miss": torch.zeros(d, **_f64(z)), "miss2": torch.zeros(d, **_f64(z)),
                 "row_miss": torch.empty(len(z), device=self._device)}
        model = torch.cat([self._w, (self._mu - center)[:, None]], 1)     # y = [W, dmu] [z; 1]
        z1 = torch.cat([z, torch.ones(len(z), 1, device=self._device)], 1)
        w = self._w
        start = 0
        for block in blocks():
            stop = start + len(block["n_obs"])
            completed = self._impute(block, z1[start:stop], model, buffer)
            if refresh:
                z[start:stop] = _posterior_step(z[start:stop], completed[0] @ w - model[:, -1] @ w,
                                                w.square().sum(0), self._s2,
                                                1 - completed[1][:, None])
                z1[start:stop, :-1] = z[start:stop]
                completed = self._impute(block, z1[start:stop], model, buffer)
            y, sweep["row_miss"][start:stop], total, sq, miss, miss2 = completed
            sweep["sum"] += total
            sweep["sq"] += sq
            sweep["miss"] += miss
            sweep["miss2"] += miss2
            p = torch.matmul(y, basis, out=sweep["p"][start:stop])
            sweep["q"].addmm_(y.T, p)
            start = stop
        sweep["sum"] = sweep["sum"].double()
        return sweep

    def _impute(self, block, z1: torch.Tensor, model: torch.Tensor,
                buffer: torch.Tensor | None) -> tuple:
        """E-step for one block: the completed data ``a x + (1 - a) [W, mu - center] z~``, each
        row's mean missing weight ``<1 - a>``, the column sums and the sum of squares of the
        completed data, and the per-pixel sums of ``1 - a`` and ``(1 - a)^2``. A block with 0/1
        weights is completed in place, only its missing entries computed (by a sampled
        product, or with many missing by a dense product into ``buffer`` and a gather); a
        weighted one is written into ``buffer`` (the stage's, reused) from ``x``."""
        row_miss = 1 - block["n_obs"] / len(self._cols)
        if "miss_flat" in block:
            flat = block["miss_flat"]
            if "miss" in block:
                values = torch.sparse.sampled_addmm(block["miss"], z1, model.T, beta=0.0).values()
            else:
                values = torch.mm(z1, model.T, out=buffer[:len(z1)]).view(-1).take(flat)
            y = block["x"]
            y.view(-1).index_copy_(0, flat, values)
            return (y, row_miss, torch.mv(y.T, z1[:, -1]),
                    block["sq"] + float(torch.dot(values, values)),
                    block["col_miss"], block["col_miss"])
        alpha = self._alpha(block)
        y = torch.mm(z1, model.T, out=buffer[:len(z1)]).lerp_(block["x"], alpha)
        total, sq = torch.mv(y.T, z1[:, -1]), float(torch.linalg.vector_norm(y)) ** 2
        if not self.weighted:
            return y, row_miss, total, sq, block["col_miss"], block["col_miss"]
        rest = 1 - alpha
        return (y, rest.mean(1), total, sq, rest.sum(0).double(), rest.square_().sum(0).double())

    def _alpha(self, block) -> torch.Tensor:
        """Weight of the measured value in the completed data (B, D): the 0/1 observed mask."""
        return block["obs"]

    def _ritz(self, sweep: dict, basis: torch.Tensor, center: torch.Tensor,
              z: torch.Tensor) -> tuple:
        """M-step on the span of ``basis`` (Rayleigh-Ritz): W, mu and sigma^2 from the top
        eigenpairs of S; then the next basis ``orth(S V)`` and the E-step's latents, ``z``
        (the latents of the data as completed) moved one step towards each row's exact
        posterior mean (module docstring)."""
        k, d, n = self.n_components, len(self._cols), len(z)
        v = basis.double()
        diag, factor = self._imputed_variance(sweep, n)      # S = Yc^T Yc / n + these
        mean = sweep["sum"] / n
        pc = sweep["p"].double() - mean @ v                  # centred Y V
        vf = v.T @ factor
        lam, vec = torch.linalg.eigh(pc.T @ pc / n + (v.T * diag) @ v + vf @ vf.T)
        lam, vec = lam.flip(0)[:k], vec.flip(1)[:, :k]
        total = sweep["sq"] / n - float(mean @ mean) + float(diag.sum() + factor.square().sum())
        # the floor keeps the E-step precisions (cond ~ lambda_1 / sigma^2) solvable in float32
        s2 = max((total - float(lam.sum())) / (d - k), 1e-6 * max(float(lam[0]), 1e-30))
        scale = torch.sqrt(torch.clamp(lam - s2, min=s2 * 1e-3))
        # z in the new W's coordinates (W^T W = diag(scale^2)), then one E-step
        z = z @ ((vec.T @ (v.T @ self._w.double())) / scale[:, None]).T.float()
        z = _posterior_step(z, (pc @ (vec * scale)).float(), scale.square().float(), s2,
                            1 - sweep["row_miss"][:, None])
        self._w = (v @ (vec * scale)).float()
        self._mu = (center.double() + mean).float()
        self._s2 = s2
        sv = (sweep["q"].double() - sweep["sum"][:, None] * (mean @ v)) / n \
            + diag[:, None] * v + factor @ vf.T
        return _orthonormal(sv), z

    def _imputed_variance(self, sweep: dict, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional covariance of the completed values averaged over rows, as a
        diagonal (D,) plus ``factor factor^T`` (factor D x K). Per row it is
        ``sigma^2 (I - A) + (I - A) W Sigma_n W^T (I - A)``; with the posterior covariance
        ``Sigma`` of a row whose weights are each pixel's mean, and the weights of two pixels
        averaged as if independent, the average is ``sigma^2 <1 - a>`` plus
        ``<(1 - a)^2> - <1 - a>^2`` times ``w_d^T Sigma w_d`` on the diagonal, plus
        ``C W Sigma W^T C`` with ``C = diag(<1 - a>)`` (module docstring)."""
        k, miss = self.n_components, sweep["miss"] / n
        if math.isinf(self._s2):                 # first pass: nothing imputed yet
            return torch.zeros_like(miss), torch.zeros(len(miss), k, **_f64(miss))
        w = self._w.double()
        precision = torch.eye(k, **_f64(w)) + (w.T * ((1 - miss) / self._s2)) @ w
        cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        spread = ((w @ cov) * w).sum(1)
        diag = self._s2 * miss + (sweep["miss2"] / n - miss.square()) * spread
        return diag, (miss[:, None] * w) @ torch.linalg.cholesky(cov)

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
        model._runs = _column_runs(model._cols)
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
    take the 1-sigma uncertainties of ``X`` (same shape). ``sigma^2`` is the scatter the
    K-dimensional model does not explain. The imputation solver completes each pixel as the
    blend ``a x + (1 - a)(W z + mu)``, ``a = sigma^2 / (sigma^2 + err^2)`` (module docstring).
    Exact EM updates sigma^2 by the fixed point ``sigma^2 <- sigma^2 sum(r/v^2) / sum(1/v)``
    with ``v = sigma^2 + err^2`` and ``r`` the expected squared residual, which reduces to the
    PPCA M-step when all errors are zero. The per-pixel weights are not 0/1, so all blocks
    are dense.
    """

    weighted = True

    def _weights(self, block) -> torch.Tensor:
        return block["obs"] / (self._s2 + block["err2"])

    def _alpha(self, block) -> torch.Tensor:
        return block["obs"] / (1 + block["err2"] / self._s2)

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


def _f64(like: torch.Tensor) -> dict:
    """Keyword arguments for a float64 tensor on the device of ``like``."""
    return {"dtype": torch.float64, "device": like.device}


def _posterior_step(z: torch.Tensor, projection: torch.Tensor, scale2: torch.Tensor,
                    s2: float, seen: torch.Tensor) -> torch.Tensor:
    """One step of the Richardson iteration for each row's posterior mean,
    ``(W_o^T W_o + s2 I) z = W_o^T x_o``, given ``projection = W^T (y - mu)`` of the row as
    completed with ``W z`` (then the residual is ``W^T (y - mu) - (W^T W + s2 I) z``) and
    ``W^T W = diag(scale2)``. Preconditioned with the row's observed fraction ``seen``,
    ``W_o^T W_o ~ seen W^T W``, the error shrinks by the scatter of the missing pixels' Gram
    matrix about that, not by the missing fraction itself."""
    return z + (projection - (scale2 + s2) * z) / (seen * scale2 + s2)


def _rotation(w_old: torch.Tensor, w: torch.Tensor) -> float:
    """``|E|_F^2`` for ``w_old = w R + E`` with E orthogonal to the columns of w: how far the
    columns of ``w_old`` lie outside their new span, each weighted by its variance."""
    w, w_old = w.double(), w_old.double()
    e = w_old - w @ torch.cholesky_solve(w.T @ w_old, torch.linalg.cholesky(w.T @ w))
    return float(e.square().sum())


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


def _column_runs(cols: np.ndarray) -> list[tuple[int, int, int]] | None:
    """``(first, stop, target)`` of each run of consecutive indices in sorted ``cols``, or None
    when there are more than ``_MAX_RUNS`` runs."""
    breaks = np.flatnonzero(np.diff(cols) != 1) + 1
    if len(breaks) >= _MAX_RUNS:
        return None
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(cols)]])
    return [(int(cols[a]), int(cols[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


def _missing_entries(n_miss: np.ndarray, cols: np.ndarray, shape, device,
                     transposed: bool) -> dict:
    """Missing entries (``n_miss`` per row, their pixels ``cols`` in row order) as sparse CSR
    0/1 matrices, rows x pixels ("miss") and, when ``transposed``, pixels x rows ("miss_t")."""
    crow = np.zeros(shape[0] + 1, np.int32)
    np.cumsum(n_miss, out=crow[1:])
    ones = np.ones(len(cols), np.float32)
    parts = [("miss", (crow, cols), shape)]
    if transposed:
        by_col = scipy.sparse.csr_matrix((ones, cols, crow), shape=shape).tocsc()
        parts.append(("miss_t", (by_col.indptr, by_col.indices), shape[::-1]))
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        for name, (ptr, ind), size in parts:
            out[name] = torch.sparse_csr_tensor(
                torch.as_tensor(ptr.astype(np.int32, copy=False), device=device),
                torch.as_tensor(ind.astype(np.int32, copy=False), device=device),
                torch.as_tensor(ones, device=device), tuple(size), check_invariants=False)
    return out
