"""The plate check (paper App. C) and the plate covariance: they see a shared plate offset,
and see nothing where there is none."""

import numpy as np
import pytest

from specsift.metric.doppelganger import doppelganger_rate, loco_evaluate
from specsift.metric.plates import plate_covariance
from specsift.metric.rsca import LatentMetric


def _plated_stars(offset: float, seed=0, n_field=3000, n_clusters=6, per=10, k=4,
                  n_plates=30):
    """Latents of field stars and cluster members, each cluster on one plate; every star of
    plate p is moved by ``offset * o_p`` along the first latent (a shared systematic), in which
    the chemistry varies little (scale 0.2), so that the plate dominates it."""
    rng = np.random.default_rng(seed)
    scale = np.array([0.2] + [1.0] * (k - 1))
    centres = rng.normal(size=(n_clusters, k)) * scale
    members = np.repeat(centres, per, 0) + 0.3 * rng.normal(size=(n_clusters * per, k)) * scale
    field = rng.normal(size=(n_field, k)) * scale
    member_plates = np.repeat(rng.choice(n_plates, n_clusters, replace=False), per)
    field_plates = rng.integers(0, n_plates, n_field)
    shift = np.zeros((n_plates, k))
    shift[:, 0] = offset * rng.normal(size=n_plates)
    members, field = members + shift[member_plates], field + shift[field_plates]
    member_v = np.repeat(rng.normal(0, 2, n_clusters), per) + rng.normal(0, 0.5, n_clusters * per)
    stars = {"z_members": members, "z_field": field,
             "clusters": np.repeat([f"C{i}" for i in range(n_clusters)], per),
             "member_v": member_v, "member_ak": rng.uniform(0, 0.1, n_clusters * per),
             "field_v": rng.normal(0, 4, n_field), "field_ak": rng.uniform(0, 0.1, n_field),
             "member_plates": member_plates.astype(str), "field_plates": field_plates.astype(str)}
    return stars


def _plain(s):
    X = np.concatenate([s["z_members"], s["z_field"]])
    cluster = np.concatenate([s["clusters"], np.full(len(s["z_field"]), "")])
    return doppelganger_rate(X, cluster, cluster == "",
                             np.concatenate([s["member_v"], s["field_v"]]),
                             np.concatenate([s["member_ak"], s["field_ak"]]),
                             plates=np.concatenate([s["member_plates"], s["field_plates"]]))


def test_plate_check_sees_a_shared_offset_and_nothing_without_one():
    shared = _plain(_plated_stars(offset=1.5))
    assert shared.plates.same_vs_other_plate_field_rate > 2
    assert shared.plate_safe_rate < shared.global_rate
    # the offset moves only the pairs on two plates: the same-plate rate is unchanged
    clean = _plain(_plated_stars(offset=0.0))
    assert clean.plates.same_plate_field_rate == shared.plates.same_plate_field_rate
    assert clean.plates.same_vs_other_plate_field_rate < 1.5


def test_close_field_stars_are_the_distinct_stars_behind_the_close_pairs():
    s = _plated_stars(offset=1.5)
    check = _plain(s).plates
    stars, n_pairs = set(), 0
    for name in np.unique(s["clusters"]):
        idx = np.flatnonzero(s["clusters"] == name)
        m = s["z_members"][idx]
        sib = np.sqrt(((m[:, None] - m[None]) ** 2).sum(-1))[np.triu_indices(len(idx), 1)]
        d = np.sqrt(((m[:, None] - s["z_field"][None]) ** 2).sum(-1))
        ok = ((np.abs(s["member_v"][idx][:, None] - s["field_v"][None]) < 5)
              & (np.abs(s["member_ak"][idx][:, None] - s["field_ak"][None]) < 0.05))
        same = s["member_plates"][idx][:, None] == s["field_plates"][None]
        close = ok & same & (d < np.median(sib))
        stars |= {(name, j) for j in np.nonzero(close)[1]}
        n_pairs += close.sum()
    assert check.n_close_field_pairs == n_pairs
    assert check.n_close_field_pairs == round(check.same_plate_field_rate * check.n_field_pairs[0])
    assert check.n_close_field_stars == len(stars)
    assert 0 < check.n_close_field_stars <= check.n_close_field_pairs


def test_field_rate_ratio_interval_is_exact_binomial_over_the_other_plate_rate():
    from scipy.stats import binomtest

    check = _plain(_plated_stars(offset=1.5)).plates
    low, high = check.field_rate_ratio_interval()
    assert low < check.same_vs_other_plate_field_rate < high
    ci = binomtest(check.n_close_field_pairs, check.n_field_pairs[0]).proportion_ci(
        0.9, method="exact")
    assert check.field_rate_ratio_interval(0.9) == pytest.approx(
        (ci.low / check.other_plate_field_rate, ci.high / check.other_plate_field_rate))
    assert check.to_dict()["field_rate_ratio_95ci"] == [low, high]
    narrow_low, narrow_high = check.field_rate_ratio_interval(0.5)
    assert low < narrow_low < narrow_high < high


def test_plate_covariance_is_zero_without_systematics_and_finds_the_shared_direction():
    clean = _plated_stars(offset=0.0)
    args = (clean["field_plates"], clean["field_v"], clean["field_ak"])
    assert np.allclose(plate_covariance(clean["z_field"], *args), 0.0)
    shared = _plated_stars(offset=1.0)
    cov = plate_covariance(shared["z_field"], shared["field_plates"], shared["field_v"],
                           shared["field_ak"])
    lam, vec = np.linalg.eigh(cov)
    assert lam[-1] == pytest.approx(1.0, rel=0.5)       # the plate offsets' variance
    assert abs(vec[0, -1]) > 0.95                         # along the first latent
    assert lam[-2] < 0.1 * lam[-1]


def test_plate_robust_metric_learns_less_of_the_plate_than_the_paper_recipe():
    s = _plated_stars(offset=1.0)
    args = (s["z_field"], s["z_members"], s["clusters"], s["member_v"], s["member_ak"],
            s["field_v"], s["field_ak"])
    plates = {"member_plates": s["member_plates"], "field_plates": s["field_plates"]}
    paper = loco_evaluate(*args, metric=LatentMetric(plate_robust=False), **plates)
    robust = loco_evaluate(*args, metric=LatentMetric(plate_robust=True), **plates)
    assert (robust.plates.same_vs_other_plate_field_rate
            < paper.plates.same_vs_other_plate_field_rate)
