"""Doppelganger rate: agrees with the shared reference and cross-validates by cluster."""

import numpy as np
import pytest

from specsift.errors import SpecsiftInputError
from specsift.metric.doppelganger import doppelganger_rate, loco_evaluate
from specsift.metric.rsca import LatentMetric
from specsift.mocks import load_generator


def _stars(seed=0, n_field=2000, n_clusters=6, per=8, k=4):
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(n_field, k))
    members = np.repeat(rng.normal(size=(n_clusters, k)), per, 0) + 0.3 * rng.normal(
        size=(n_clusters * per, k))
    labels = np.repeat([f"C{i}" for i in range(n_clusters)], per)
    X = np.concatenate([members, field])
    cluster = np.concatenate([labels, np.full(n_field, "")])
    vhelio = rng.normal(0, 10, len(X))
    ak = rng.uniform(0, 0.1, len(X))
    return X, cluster, cluster == "", vhelio, ak


def test_plain_rate_matches_shared_reference():
    reference = load_generator("mock_apogee_eval").doppelganger_rate
    X, cluster, is_field, vhelio, ak = _stars()
    ours = doppelganger_rate(X, cluster, is_field, vhelio, ak)
    ref_global, ref_per = reference(X, cluster, is_field, vhelio, ak)
    assert ours.global_rate == pytest.approx(ref_global, abs=1e-12)
    assert ours.per_cluster == pytest.approx(ref_per, abs=1e-12)
    assert 0 < ours.global_rate < 0.5


def test_plain_rate_matches_reference_on_mock_rsca_space(mock_rsca):
    data, model = mock_rsca
    reference = load_generator("mock_apogee_eval").doppelganger_rate
    mv, ma, fv, fa = data.rv_ak()
    X = np.concatenate([model.transform(data.members), model.transform(data.field)])
    cluster = np.concatenate([data.clusters, np.full(len(data.field), "")])
    v, a = np.concatenate([mv, fv]), np.concatenate([ma, fa])
    ours = doppelganger_rate(X, cluster, cluster == "", v, a, empty="skip")
    ref_global, ref_per = reference(X, cluster, cluster == "", v, a)
    assert ours.global_rate == pytest.approx(ref_global, abs=1e-12)
    assert ours.per_cluster == pytest.approx(ref_per, abs=1e-12)


def test_a_cluster_spread_like_the_field_is_called_wide():
    X, cluster, is_field, vhelio, ak = _stars(seed=3)
    spread = cluster == "C4"
    X = X.copy()
    X[spread] = X[spread].mean(0) + 1.5 * np.random.default_rng(1).normal(size=(spread.sum(), 4))
    result = doppelganger_rate(X, cluster, is_field, vhelio, ak)
    ratio = result.sibling_radius_ratio()
    assert ratio["C4"] > 3 and max(v for k, v in ratio.items() if k != "C4") < 2
    assert result.wide_clusters() == pytest.approx({"C4": ratio["C4"]})
    assert result.to_dict()["wide_clusters"] == ["C4"]
    others = max(v for k, v in result.per_cluster.items() if k != "C4")
    assert result.per_cluster["C4"] > 5 * others


def test_rv_and_extinction_cut_removes_pairs():
    X, cluster, is_field, vhelio, ak = _stars()
    wide = doppelganger_rate(X, cluster, is_field, vhelio, ak, max_dv=1e9, max_dak=1e9)
    narrow = doppelganger_rate(X, cluster, is_field, vhelio, ak)
    assert sum(narrow.n_pairs.values()) < 0.5 * sum(wide.n_pairs.values())


def test_cluster_without_valid_field_pair_is_named():
    X, cluster, is_field, vhelio, ak = _stars()
    vhelio = vhelio.copy()
    vhelio[cluster == "C2"] = 500.0
    with pytest.raises(SpecsiftInputError, match="C2"):
        doppelganger_rate(X, cluster, is_field, vhelio, ak)
    skipped = doppelganger_rate(X, cluster, is_field, vhelio, ak, empty="skip")
    assert skipped.skipped == ["C2"] and "C2" not in skipped.per_cluster


def test_loco_refits_without_the_held_out_cluster():
    X, cluster, is_field, vhelio, ak = _stars(k=6)
    isf = is_field
    mem = ~isf
    args = (X[isf], X[mem], cluster[mem], vhelio[mem], ak[mem], vhelio[isf], ak[isf])
    loco = loco_evaluate(*args)
    # the no-CV fit sees every cluster, so it cannot do worse than leave-one-out
    full = LatentMetric(plate_robust=False).fit(X[isf], X[mem], cluster[mem])
    nocv = doppelganger_rate(np.concatenate([full.transform(X[mem]), full.transform(X[isf])]),
                             np.concatenate([cluster[mem], cluster[isf]]),
                             np.concatenate([np.zeros(mem.sum(), bool), np.ones(isf.sum(), bool)]),
                             np.concatenate([vhelio[mem], vhelio[isf]]),
                             np.concatenate([ak[mem], ak[isf]]))
    assert nocv.global_rate <= loco.global_rate
    assert set(loco.per_cluster) == {f"C{i}" for i in range(6)}
    # training on a single other cluster per fold gives a different (worse) metric
    one = loco_evaluate(*args, train_clusters={f"C{i}": [f"C{(i + 1) % 6}", f"C{(i + 2) % 6}"]
                                               for i in range(6)})
    assert one.global_rate != loco.global_rate
