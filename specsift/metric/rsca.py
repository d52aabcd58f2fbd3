"""RSCA: a linear metric in which open-cluster siblings are close and field stars far apart.

de Mijolla & Ness (2022), "Measuring chemical likeness of stars with RSCA", ApJ 926, 193
(arXiv:2110.02250); public code github.com/drd13/RSCA (``apoNN/src/fitters.py``,
``StandardFitter``). Four steps, each a linear map:

1. **Compression**: PPCA with missing pixels on the field spectra (skipped for abundances).
2. **Sphering**: whiten the field latents so the field has identity covariance; any direction
   now has unit field variance.
3. **Rotation**: PCA of the cluster-centred members (each member minus its cluster mean) in
   the sphered space; its axes are the directions along which siblings are most/least alike.
4. **Scaling**: per rotated dimension, ``sigma_clust`` is the pooled intra-cluster spread,
   ``sqrt(sum_c (n_c - 1) s_c^2 / (sum_c n_c - n_clusters))`` with ``s_c`` the median absolute
   deviation (x 1.4826) of cluster ``c``; the dimension is divided by
   ``sigma_r = sqrt(sigma_clust^2 / (1 - sigma_clust^2))`` (Eq. 6 of the paper; in the sphered
   space the field variance is 1 = inter-cluster + intra-cluster variance, so sigma_r is the
   ratio of intra- to inter-cluster scatter). Dimensions with ``sigma_clust >= 1`` carry no
   chemical information and get weight 0.

Dimensions are output in order of decreasing weight ``1/sigma_r`` (most discriminating first),
so ``transform(X, n_dims=n)`` keeps the top n.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import SpecsiftInputError
from .defaults import N_COMPONENTS
from .plates import plate_covariance
from .ppca import PPCA, WeightedPPCA

__all__ = ["RSCA", "LatentMetric", "pooled_mad", "check_n_dims", "MAD_SCALE"]

logger = logging.getLogger("specsift.metric")

MAD_SCALE = 1.4826  # MAD of a Gaussian x 1.4826 = its standard deviation


def pooled_mad(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pooled per-dimension intra-cluster scatter from per-cluster median absolute deviations."""
    names, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    num = np.zeros(values.shape[1])
    for c in range(len(names)):
        group = values[inverse == c]
        mad = MAD_SCALE * np.median(np.abs(group - np.median(group, 0)), 0)
        num += (counts[c] - 1) * mad ** 2
    return np.sqrt(num / (counts.sum() - len(names)))


def check_n_dims(n_dims: int | None, k: int) -> None:
    """Stop unless ``n_dims`` (the top dimensions kept) is None or one of 1..``k``."""
    if n_dims is not None and not 1 <= n_dims <= k:
        raise SpecsiftInputError(f"n_dims (--n-dims) must be between 1 and {k}, the model's "
                                 f"dimensions, got {n_dims}")


def _check_clusters(labels: np.ndarray) -> None:
    names, counts = np.unique(labels, return_counts=True)
    single = names[counts < 2]
    if len(single):
        raise SpecsiftInputError(f"cluster(s) {', '.join(map(str, single))} have a single member;"
                                 " a sibling distance needs at least two (drop them first)")
    if len(names) < 2:
        raise SpecsiftInputError("RSCA needs members of at least two clusters")


class LatentMetric:
    """Steps 2-4 of RSCA on latent vectors (PPCA latents or abundances).

    Arguments:
        whiten: sphere with the field covariance (False: only standardise each dimension).
        rotate: rotate onto the principal axes of the cluster-centred members.
        relative_scaling: scale by ``1/sigma_r`` (False: by ``1/sigma_clust``).
        plate_robust: count the plate-shared scatter of the field (:mod:`.plates`) as
            intra-cluster scatter (see below); False is the paper's recipe.

    ``whiten=False, rotate=False`` is the "scaled" representation of Fig. 4 of the paper.

    Why ``plate_robust`` (a departure from the paper, the default): members of a cluster are
    observed on one plate, so their intra-cluster scatter misses the plate-to-plate scatter
    that siblings observed apart (a dissolved cluster) show, and the paper's metric
    up-weights directions where the plate, not the chemistry, makes siblings alike. With
    ``P`` the plate covariance estimated from field stars that share a plate (sphered), the
    rotation diagonalises ``C_intra + P`` and ``sigma_clust^2`` becomes the pooled MAD^2 plus
    ``P``'s variance along each axis: the scatter a sibling on another plate would show.
    Directions the plate dominates (``sigma_clust >= 1``) get weight 0. Without systematics
    ``P = 0`` and this is the paper's recipe.
    """

    def __init__(self, whiten: bool = True, rotate: bool = True, relative_scaling: bool = True,
                 plate_robust: bool = True):
        self.whiten = whiten
        self.rotate = rotate
        self.relative_scaling = relative_scaling
        self.plate_robust = plate_robust

    def fit_sphering(self, z_field: np.ndarray, field_obs=None) -> "LatentMetric":
        """Step 2 and the plate covariance (they depend on the field alone, so
        cross-validation fits them once). ``field_obs``: ``(plates, vhelio, ak)`` of the
        field stars (observing group, VHELIO_AVG, AK_TARG), needed with ``plate_robust``."""
        z_field = np.asarray(z_field, np.float64)
        self.center_ = z_field.mean(0)
        cov = np.cov(z_field - self.center_, rowvar=False).reshape(z_field.shape[1], -1)
        if self.whiten:
            eigval, eigvec = np.linalg.eigh(cov)
            eigval = np.maximum(eigval, eigval.max() * 1e-12)
            self.sphering_ = (eigvec / np.sqrt(eigval)).T
        else:
            self.sphering_ = np.diag(1.0 / np.sqrt(np.maximum(np.diag(cov), 1e-300)))
        k = z_field.shape[1]
        self.plate_cov_ = np.zeros((k, k))
        if self.plate_robust:
            if field_obs is None:
                raise ValueError("the plate-robust metric needs the plate (observing group), "
                                 "VHELIO_AVG and AK_TARG of each field star; pass field_obs, "
                                 "or plate_robust=False for the paper's recipe")
            if any(len(a) != len(z_field) for a in field_obs):
                raise ValueError(f"field_obs must hold {len(z_field)} values each (one per "
                                 "field star)")
            self.plate_cov_ = plate_covariance(self.sphere(z_field), *field_obs)
        self.n_plate_directions_ = int(np.linalg.matrix_rank(self.plate_cov_, 1e-12))
        return self

    def sphere(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, np.float64) - self.center_) @ self.sphering_.T

    def sphered_copy(self) -> "LatentMetric":
        """An unfitted copy whose step 2 is the identity, for inputs already sphered by
        ``self`` (what cross-validation folds refit)."""
        copy = LatentMetric(self.whiten, self.rotate, self.relative_scaling, self.plate_robust)
        k = len(self.center_)
        copy.center_, copy.sphering_ = np.zeros(k), np.eye(k)
        copy.plate_cov_, copy.n_plate_directions_ = self.plate_cov_, self.n_plate_directions_
        return copy

    def fit_members(self, y_members: np.ndarray, labels: np.ndarray) -> "LatentMetric":
        """Steps 3-4 on already sphered member vectors (cheap: what each CV fold refits)."""
        labels = np.asarray(labels)
        _check_clusters(labels)
        y = np.asarray(y_members, np.float64)
        centred = y.copy()
        for name in np.unique(labels):
            centred[labels == name] -= y[labels == name].mean(0)
        plate = self.plate_cov_
        if not self.rotate:
            rotation = np.eye(y.shape[1])
        elif plate.any():
            intra = centred.T @ centred / max(len(y) - len(np.unique(labels)), 1)
            rotation = np.linalg.eigh(intra + plate)[1].T
        else:
            # full_matrices: a complete basis even with fewer members than dimensions
            rotation = np.linalg.svd(centred - centred.mean(0), full_matrices=True)[2]
        sigma = np.sqrt(pooled_mad(centred @ rotation.T, labels) ** 2
                        + np.einsum("ij,jk,ik->i", rotation, plate, rotation))
        if self.relative_scaling:
            inside = sigma < 1.0
            weight = np.where(inside, np.sqrt(np.clip(1.0 - sigma ** 2, 0, None))
                              / np.maximum(sigma, 1e-12), 0.0)
        else:
            weight = 1.0 / np.maximum(sigma, 1e-12)
        order = np.argsort(-weight, kind="stable")
        self.rotation_ = rotation[order]
        self.sigma_clust_ = sigma[order]
        self.scaling_ = weight[order]
        self.n_suppressed_ = int((self.scaling_ == 0).sum())
        return self

    def fit(self, z_field, z_members, labels, field_obs=None) -> "LatentMetric":
        self.fit_sphering(z_field, field_obs)
        return self.fit_members(self.sphere(z_members), labels)

    @property
    def matrix_(self) -> np.ndarray:
        """(K, K) map from centred latents to the metric space: diag(scaling) R S."""
        return (self.scaling_[:, None] * self.rotation_) @ self.sphering_

    def transform(self, z, n_dims: int | None = None) -> np.ndarray:
        if not hasattr(self, "scaling_"):
            raise RuntimeError("this LatentMetric is not fitted yet; call fit first")
        check_n_dims(n_dims, len(self.scaling_))
        out = self.sphere(z) @ (self.scaling_[:, None] * self.rotation_).T
        return out[:, :n_dims]


class RSCA:
    """Relevant Scaled Component Analysis (de Mijolla & Ness 2022), scikit-learn style.

    Arguments:
        n_components: PPCA latent dimensions K (ignored with ``compress=False``).
        compress: run the PPCA step (spectra); False for abundance vectors.
        weighted: use :class:`WeightedPPCA` (pass ``errors`` to fit/transform).
        seed: seed of the PPCA step.
        ppca_params: extra PPCA arguments (tol, max_iter, batch_size, device, ...).
        whiten, rotate, relative_scaling, plate_robust: see :class:`LatentMetric`;
            ``plate_robust`` (default) needs ``field_obs`` in :meth:`fit`, False is the
            paper's exact recipe.

    Fitted attributes: ``ppca_`` (or None), ``metric_`` (:class:`LatentMetric`),
    ``linear_map_`` (K, D) map of fully observed centred spectra to the embedding,
    ``scaling_`` (K,) factors ``1/sigma_r`` (0 = suppressed), ``sigma_clust_``.

    Example:
        >>> model = RSCA(n_components=30).fit(X_field, X_members, clusters)  # doctest: +SKIP
        >>> embedding = model.transform(X_other, n_dims=10)                   # doctest: +SKIP
    """

    def __init__(self, n_components: int = N_COMPONENTS, compress: bool = True,
                 weighted: bool = False, seed: int = 0, ppca_params: dict | None = None,
                 whiten: bool = True, rotate: bool = True, relative_scaling: bool = True,
                 plate_robust: bool = True):
        self.n_components = n_components
        self.compress = compress
        self.weighted = weighted
        self.seed = seed
        self.ppca_params = ppca_params
        self.whiten = whiten
        self.rotate = rotate
        self.relative_scaling = relative_scaling
        self.plate_robust = plate_robust

    def fit(self, X_field, X_members, cluster_labels, errors_field=None,
            errors_members=None, field_obs=None) -> "RSCA":
        """Learn the metric from field stars and labelled open-cluster members.

        ``X_*`` are spectra (NaN = missing pixel) or, with ``compress=False``, abundances;
        ``errors_*`` are the pixel uncertainties needed with ``weighted=True``;
        ``field_obs`` is ``(plates, vhelio, ak)`` of the field stars (``plate_robust``).
        """
        labels = np.asarray(cluster_labels)
        if len(labels) != len(X_members):
            raise ValueError(f"{len(labels)} cluster labels for {len(X_members)} members")
        _check_clusters(labels)
        if self.compress:
            cls = WeightedPPCA if self.weighted else PPCA
            self.ppca_ = cls(n_components=self.n_components, seed=self.seed,
                             **(self.ppca_params or {}))
            self.ppca_.fit(X_field, errors=errors_field)
        else:
            self.ppca_ = None
        z_field = self.latents(X_field, errors_field)
        self.metric_ = self.latent_metric()
        self.metric_.fit_sphering(z_field, field_obs)
        return self.fit_members(self.latents(X_members, errors_members), labels)

    def latent_metric(self) -> LatentMetric:
        """An unfitted :class:`LatentMetric` with this model's options (steps 2-4)."""
        return LatentMetric(self.whiten, self.rotate, self.relative_scaling, self.plate_robust)

    def fit_members(self, z_members, cluster_labels) -> "RSCA":
        """Refit steps 3-4 only, from member latents (e.g. with other training clusters)."""
        self.metric_.fit_members(self.metric_.sphere(z_members), np.asarray(cluster_labels))
        return self

    def latents(self, X, errors=None) -> np.ndarray:
        """Step 1: PPCA posterior-mean latents (or the abundances themselves)."""
        if self.compress:
            if not hasattr(self, "ppca_"):
                raise RuntimeError("this RSCA is not fitted yet; call fit first")
            return self.ppca_.transform(X, errors=errors).astype(np.float64)
        X = np.asarray(X, np.float64)
        if not np.isfinite(X).all():
            row = int(np.flatnonzero(~np.isfinite(X).all(1))[0])
            raise SpecsiftInputError("abundance vector has a missing value", row=row)
        return X

    def transform(self, X, n_dims: int | None = None, errors=None) -> np.ndarray:
        """Embed spectra (or abundances); Euclidean distance there is the chemical distance."""
        if not hasattr(self, "metric_"):
            raise RuntimeError("this RSCA is not fitted yet; call fit first")
        return self.metric_.transform(self.latents(X, errors), n_dims)

    @property
    def scaling_(self) -> np.ndarray:
        return self.metric_.scaling_

    @property
    def sigma_clust_(self) -> np.ndarray:
        return self.metric_.sigma_clust_

    @property
    def linear_map_(self) -> np.ndarray:
        """(K, D): ``embedding = x @ linear_map_.T + offset_`` for a fully observed x."""
        return self._affine()[0]

    @property
    def offset_(self) -> np.ndarray:
        return self._affine()[1]

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        metric = self.metric_
        if self.ppca_ is None:
            return metric.matrix_, -metric.matrix_ @ metric.center_
        p = self.ppca_
        w = p.components_.T * np.sqrt(np.maximum(p.explained_variance_ - p.noise_variance_, 0))
        w = w * p.used_features_[:, None]
        m = np.eye(w.shape[1]) + w.T @ w / p.noise_variance_
        posterior = np.linalg.solve(m, w.T / p.noise_variance_)       # (K, D): E[z|x] map
        linear = metric.matrix_ @ posterior
        return linear, -linear @ p.mean_ - metric.matrix_ @ metric.center_
