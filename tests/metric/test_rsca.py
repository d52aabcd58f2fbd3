"""RSCA: the four steps, the scaling formula of the paper, and estimator conventions."""

import numpy as np
import pytest

from specsift.errors import SpecsiftInputError
from specsift.metric.rsca import RSCA, LatentMetric, pooled_mad


def _toy(seed=0, n_field=3000, n_clusters=12, per=10, k=5):
    """Latent vectors where clusters are tight along the first two axes only."""
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 1.0, 1.0, 1.0, 1.0])[:k]
    field = rng.normal(size=(n_field, k)) * scale
    centres = rng.normal(size=(n_clusters, k)) * scale
    spread = np.array([0.1, 0.2, 1.0, 1.0, 1.0])[:k]
    members = np.repeat(centres, per, 0)
    members[:, 2:] = 0.0
    members = members + rng.normal(size=members.shape) * spread
    labels = np.repeat([f"C{i}" for i in range(n_clusters)], per)
    return field, members, labels


def test_pooled_mad_matches_gaussian_scatter():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4000, 2)) * [0.5, 2.0]
    labels = np.repeat(np.arange(40), 100)
    np.testing.assert_allclose(pooled_mad(values, labels), [0.5, 2.0], rtol=0.06)


def test_scaling_is_inverse_sigma_r_and_suppresses_unclustered_dimensions():
    field, members, labels = _toy()
    model = RSCA(compress=False, plate_robust=False).fit(field, members, labels)
    s = model.sigma_clust_
    kept = s < 1
    np.testing.assert_allclose(model.scaling_[kept], np.sqrt(1 - s[kept] ** 2) / s[kept])
    assert (model.scaling_[~kept] == 0).all()
    assert np.all(np.diff(model.scaling_) <= 0)  # most strongly scaled dimension first
    # the two tight directions come first and are nearly the original axes 0 and 1
    rot = model.metric_.rotation_ @ model.metric_.sphering_
    assert np.abs(rot[0, :2]).sum() / np.abs(rot[0]).sum() > 0.9
    assert s[0] == pytest.approx(0.1, rel=0.3) and s[1] == pytest.approx(0.2, rel=0.3)


def test_sphering_gives_identity_field_covariance():
    field, members, labels = _toy()
    metric = LatentMetric(plate_robust=False).fit_sphering(field @ np.diag([3.0, 1, 1, 1, 0.2]))
    y = metric.sphere(field @ np.diag([3.0, 1, 1, 1, 0.2]))
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(5), atol=1e-8)


def test_top_n_dims_and_linear_map(mock_rsca):
    data, model = mock_rsca
    full = model.transform(data.members)
    np.testing.assert_allclose(model.transform(data.members, n_dims=3), full[:, :3])
    x = np.where(np.isnan(data.members[:1]), model.ppca_.mean_, data.members[:1])
    np.testing.assert_allclose(x @ model.linear_map_.T + model.offset_, model.transform(x),
                               rtol=1e-3, atol=1e-3)


def test_siblings_are_closer_after_rsca(mock_rsca):
    data, model = mock_rsca
    emb = model.transform(data.members)
    same = data.clusters[:, None] == data.clusters[None, :]
    d = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))
    off = ~np.eye(len(emb), dtype=bool)
    assert np.median(d[same & off]) < 0.5 * np.median(d[~same])


def test_single_member_cluster_is_named():
    field, members, labels = _toy()
    labels = labels.astype("<U10")
    labels[0] = "Lonely"
    with pytest.raises(SpecsiftInputError, match="Lonely"):
        RSCA(compress=False, plate_robust=False).fit(field, members, labels)


def test_transform_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        RSCA().transform(np.zeros((2, 5)))


def test_missing_abundance_is_named_by_row():
    field, members, labels = _toy()
    model = RSCA(compress=False, plate_robust=False).fit(field, members, labels)
    members[4, 1] = np.nan
    with pytest.raises(SpecsiftInputError, match="row 4"):
        model.transform(members)
