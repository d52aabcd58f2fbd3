"""The doppelganger rate: how often a field star looks closer to a cluster member than its siblings.

Definition (de Mijolla & Ness 2022, Sect. 4.1): for cluster c, take the median distance between
two of its members; among all (member, field star) pairs whose radial velocities differ by less
than 5 km/s and extinctions A_K by less than 0.05 (so that residual sky/telluric and interstellar
features cannot make a pair look alike), the rate is the fraction closer than that median. The
global rate is the mean over clusters weighted by cluster size. Field stars are assumed not to be
siblings, so a good metric has a low rate.

:func:`loco_evaluate` cross-validates RSCA by leaving each cluster out of the member sample in
turn. The PPCA and the sphering depend on the field only, so they are fitted once; each fold
refits the member rotation and scaling (K x K work) and embeds the field with one matmul.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import SpecsiftInputError
from .rsca import LatentMetric, check_n_dims

__all__ = ["cluster_distances", "doppelganger_rate", "loco_evaluate", "DoppelgangerResult",
           "PlateCheck", "ClusterDistances", "MAX_DV", "MAX_DAK", "WIDE_CLUSTER"]

logger = logging.getLogger("specsift.metric")

MAX_DV = 5.0     # km/s
MAX_DAK = 0.05   # mag
#: sibling radius, over the median cluster's, from which a cluster is called wide: on the
#: 22-cluster mocks of four seeds all clusters but NGC 6791 (3.7-15x) are within 2.0x (docs/rsca.md)
WIDE_CLUSTER = 3.0


@dataclass
class PlateCheck:
    """Appendix C / Fig. 8 of the paper: does the metric see the plate?

    ``same_plate_sibling_ratio``: median distance of sibling pairs observed together over that
    of sibling pairs observed apart (each distance in units of its cluster's median sibling
    distance; clusters observed on one plate only have no pair apart), with the two-sided
    Mann-Whitney p-value. ``same_vs_other_plate_field_rate``: how much more often a field star on
    the member's plate is inside the cluster's median sibling radius than one from another plate
    (pairs passing the RV/A_K cut, pooled over clusters). A metric that measures chemistry has 1
    for both. ``n_close_field_pairs``: the same-plate pairs inside the radius;
    ``n_close_field_stars``: the distinct field stars behind them (one field star near several
    members makes several pairs, so the pairs are not independent counts).
    :meth:`field_rate_ratio_interval` says how well a few close pairs pin the field ratio down.
    """

    same_plate_sibling_ratio: float
    sibling_p_value: float
    n_sibling_pairs: tuple[int, int]
    same_plate_field_rate: float
    other_plate_field_rate: float
    n_field_pairs: tuple[int, int]
    n_close_field_pairs: int
    n_close_field_stars: int

    @property
    def same_vs_other_plate_field_rate(self) -> float:
        if self.other_plate_field_rate == 0:
            return float("inf") if self.same_plate_field_rate > 0 else float("nan")
        return self.same_plate_field_rate / self.other_plate_field_rate

    def field_rate_ratio_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Exact (Clopper-Pearson) interval of ``same_vs_other_plate_field_rate``.

        The same-plate rate counts a few close pairs among a few hundred, while the other-plate
        rate rests on ~100x more pairs and is taken as known. Pairs sharing a field star are
        treated as independent, so the interval is, if anything, too narrow.
        """
        from scipy.stats import binomtest

        n_same = self.n_field_pairs[0]
        if not n_same or not self.other_plate_field_rate > 0:
            return float("nan"), float("nan")
        ci = binomtest(self.n_close_field_pairs, n_same).proportion_ci(level, method="exact")
        return ci.low / self.other_plate_field_rate, ci.high / self.other_plate_field_rate

    def to_dict(self) -> dict:
        return {"same_plate_sibling_ratio": self.same_plate_sibling_ratio,
                "same_plate_sibling_p_value": self.sibling_p_value,
                "sibling_pairs_same_other_plate": list(self.n_sibling_pairs),
                "same_plate_field_rate": self.same_plate_field_rate,
                "other_plate_field_rate": self.other_plate_field_rate,
                "same_vs_other_plate_field_rate": self.same_vs_other_plate_field_rate,
                "field_pairs_same_other_plate": list(self.n_field_pairs),
                "same_plate_close_field_pairs": self.n_close_field_pairs,
                "same_plate_close_field_stars": self.n_close_field_stars,
                "field_rate_ratio_95ci": list(self.field_rate_ratio_interval())}


@dataclass
class DoppelgangerResult:
    """Per-cluster and global doppelganger rates (see module docstring).

    With the plates of the stars known, also ``plate_safe_rate`` (the same rate counting only
    field stars from plates other than the member's) and ``plates`` (:class:`PlateCheck`).
    ``sibling_radius``: per cluster, the median sibling distance its rate counts against.
    """

    global_rate: float
    per_cluster: dict[str, float]
    sizes: dict[str, int]
    n_field: int
    n_members: int
    n_pairs: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    distances: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    plate_safe_rate: float | None = None
    plates: PlateCheck | None = None
    sibling_radius: dict[str, float] = field(default_factory=dict)

    def sibling_radius_ratio(self) -> dict[str, float]:
        """Each cluster's median sibling distance over the median of all clusters'.

        Why: where the metric fitted on the other clusters does not describe a cluster's
        members (of a type those clusters lack, e.g. the coolest giants), its siblings spread
        far wider and its rate rises, up to chance; a ratio far above 1 tells so without truth
        (docs/rsca.md)."""
        typical = float(np.median(list(self.sibling_radius.values())))
        return {name: radius / typical for name, radius in self.sibling_radius.items()}

    def wide_clusters(self, threshold: float = WIDE_CLUSTER) -> dict[str, float]:
        """The clusters whose sibling radius is ``threshold`` times the median's or more."""
        return {name: ratio for name, ratio in self.sibling_radius_ratio().items()
                if ratio >= threshold}

    def to_dict(self) -> dict:
        out = {"global_rate": self.global_rate, "per_cluster": self.per_cluster,
               "cluster_sizes": self.sizes, "field_pairs": self.n_pairs,
               "n_field": self.n_field, "n_members": self.n_members,
               "skipped_clusters": self.skipped, "sibling_radius": self.sibling_radius,
               "sibling_radius_ratio": self.sibling_radius_ratio(),
               "wide_clusters": sorted(self.wide_clusters())}
        if self.plates is not None:
            out.update(plate_safe_rate=self.plate_safe_rate, **self.plates.to_dict())
        return out


class ClusterDistances(NamedTuple):
    """Distances of one cluster: sibling pairs and the (member, field) pairs passing the cut;
    with plates known, whether each pair was observed on one plate, whether its field star
    is a membership candidate of the cluster, and that star's row in the field (else None)."""

    sibling: np.ndarray
    field: np.ndarray
    sibling_same_plate: np.ndarray | None = None
    field_same_plate: np.ndarray | None = None
    field_listed: np.ndarray | None = None
    field_row: np.ndarray | None = None


def cluster_distances(members, field_emb, member_v, member_ak, field_v, field_ak,
                      max_dv: float = MAX_DV, max_dak: float = MAX_DAK, chunk: int = 65536,
                      member_plates=None, field_plates=None, field_listed=None
                      ) -> ClusterDistances:
    """Sibling-pair distances and member-field distances of the pairs passing the RV/AK cut.

    ``member_plates``, ``field_plates``: observing groups; ``field_listed``: (N_field,) bool,
    field stars the membership catalogue lists as candidates of this cluster.

    Distances use ``|a|^2 + |b|^2 - 2 a.b`` in blocks of ``chunk`` field stars (one matmul each).
    """
    members = np.asarray(members, np.float64)
    diff = members[:, None, :] - members[None, :, :]
    upper = np.triu_indices(len(members), 1)
    sibling = np.sqrt((diff ** 2).sum(-1))[upper]
    with_plates = member_plates is not None
    m2 = (members ** 2).sum(1)[:, None]
    kept, same, listed, row = [], [], [], []
    for start in range(0, len(field_emb), chunk):
        f = np.asarray(field_emb[start:start + chunk], np.float64)
        ok = ((np.abs(member_v[:, None] - field_v[None, start:start + chunk]) < max_dv)
              & (np.abs(member_ak[:, None] - field_ak[None, start:start + chunk]) < max_dak))
        if ok.any():
            d2 = m2 + (f ** 2).sum(1)[None, :] - 2.0 * members @ f.T
            kept.append(np.sqrt(np.clip(d2, 0.0, None))[ok])
            if with_plates:
                same.append((member_plates[:, None]
                             == field_plates[None, start:start + chunk])[ok])
                listed.append(np.broadcast_to(field_listed[start:start + chunk], ok.shape)[ok])
                row.append(start + np.nonzero(ok)[1])
    to_field = np.concatenate(kept) if kept else np.empty(0)
    if not with_plates:
        return ClusterDistances(sibling, to_field)
    return ClusterDistances(sibling, to_field,
                            (member_plates[:, None] == member_plates[None, :])[upper],
                            np.concatenate(same) if same else np.empty(0, bool),
                            np.concatenate(listed) if listed else np.empty(0, bool),
                            np.concatenate(row) if row else np.empty(0, np.int64))


def _plate_check(parts: list[ClusterDistances], radii: list[float]) -> PlateCheck:
    """Pool the per-cluster distances (in units of each cluster's median sibling distance,
    ``radii``, one per part).

    The other-plate field rate is standardised to the same-plate pairs: each cluster's
    other-plate rate weighted by its number of same-plate pairs, so clusters with a high rate
    and many plate mates do not make the plate look guilty. Field stars listed as candidates
    of the cluster are left out (they may be siblings).
    """
    from scipy.stats import mannwhitneyu

    sib_same, sib_other = [], []
    n_same = close_same = expected = n_other = 0.0
    close_stars = 0
    for part, radius in zip(parts, radii):
        scaled = part.sibling / radius
        sib_same.append(scaled[part.sibling_same_plate])
        sib_other.append(scaled[~part.sibling_same_plate])
        close = (part.field < radius)[~part.field_listed]
        one = part.field_same_plate[~part.field_listed]
        n_same += one.sum()
        close_same += close[one].sum()
        close_stars += len(np.unique(part.field_row[~part.field_listed][one & close]))
        n_other += (~one).sum()
        if (~one).any():
            expected += one.sum() * close[~one].mean()
    same, other = np.concatenate(sib_same), np.concatenate(sib_other)
    if len(same) and len(other):
        ratio = float(np.median(same) / np.median(other))
        p_value = float(mannwhitneyu(same, other).pvalue)
    else:
        ratio = p_value = float("nan")
        logger.info("no cluster has siblings both on one plate and on different plates")
    nan = float("nan")
    return PlateCheck(ratio, p_value, (len(same), len(other)),
                      float(close_same / n_same) if n_same else nan,
                      float(expected / n_same) if n_same else nan, (int(n_same), int(n_other)),
                      int(close_same), int(close_stars))


def _rates(embed_members, clusters, embed_field, member_v, member_ak, field_v, field_ak,
           empty: str, max_dv: float, max_dak: float, keep: bool = False,
           member_plates=None, field_plates=None, field_candidates=None) -> DoppelgangerResult:
    """Rates given callables embedding a cluster's members and the field (per cluster)."""
    per, sizes, pairs, skipped, kept, safe, parts, radius = {}, {}, {}, [], {}, {}, [], {}
    with_plates = member_plates is not None
    names = np.unique(clusters)
    for name in names:
        idx = np.flatnonzero(clusters == name)
        if len(idx) < 2:
            raise SpecsiftInputError(f"cluster {name} has a single member; no sibling distance")
        members, field_emb = embed_members(name, idx), embed_field(name)
        part = cluster_distances(members, field_emb, member_v[idx], member_ak[idx], field_v,
                                 field_ak, max_dv, max_dak,
                                 member_plates=member_plates[idx] if with_plates else None,
                                 field_plates=field_plates,
                                 field_listed=(None if not with_plates else
                                               np.zeros(len(field_v), bool)
                                               if field_candidates is None
                                               else field_candidates == name))
        sibling, to_field = part.sibling, part.field
        if not len(to_field):
            if empty == "raise":
                raise SpecsiftInputError(
                    f"cluster {name}: no field star within {max_dv} km/s in VHELIO_AVG and "
                    f"{max_dak} in AK_TARG of any member, so its doppelganger rate is undefined"
                    " (skip such clusters with empty='skip', or --skip-empty on the CLI)")
            skipped.append(str(name))
            logger.info("cluster %s skipped: no field pair passes the RV/AK cut", name)
            continue
        radius[str(name)] = float(np.median(sibling))
        close = to_field < radius[str(name)]
        per[str(name)] = float(np.mean(close))
        sizes[str(name)] = len(idx)
        pairs[str(name)] = len(to_field)
        if with_plates:
            parts.append(part)
            apart = ~part.field_same_plate & ~part.field_listed
            safe[str(name)] = float(np.mean(close[apart])) if apart.any() else None
        if keep:
            kept[str(name)] = (sibling, to_field)
    if not per:
        raise SpecsiftInputError("no cluster has a field pair passing the RV/AK cut")
    weights = np.array([sizes[k] for k in per])
    rate = float(np.dot(weights, list(per.values())) / weights.sum())
    result = DoppelgangerResult(rate, per, sizes, len(field_v), len(clusters), pairs, skipped,
                                kept, sibling_radius=radius)
    if with_plates:
        rated = [k for k, v in safe.items() if v is not None]
        w = np.array([sizes[k] for k in rated], np.float64)
        result.plate_safe_rate = (float(np.dot(w, [safe[k] for k in rated]) / w.sum())
                                  if rated else float("nan"))
        result.plates = _plate_check(parts, [radius[name] for name in per])
    return result


def doppelganger_rate(X, member_cluster, is_field, vhelio, ak, max_dv: float = MAX_DV,
                      max_dak: float = MAX_DAK, empty: str = "raise",
                      keep_distances: bool = False, plates=None, candidates=None
                      ) -> DoppelgangerResult:
    """Plain (no cross-validation) rate of the representation X (rows = stars).

    Arguments:
        X: (N, K) embedding of every star.
        member_cluster: (N,) cluster name, "" for non-members.
        is_field: (N,) bool, the field sample.
        vhelio, ak: (N,) VHELIO_AVG and AK_TARG.
        empty: "raise" (default) or "skip" for a cluster without any valid field pair.
        keep_distances: store each cluster's sibling and field distances (for histograms).
        plates: (N,) observing group of each star (adds the plate-safe rate and checks).
        candidates: (N,) cluster a star is a membership candidate of ("" for none); such
            field stars are left out of the plate-safe rate and the checks.
    """
    X = np.asarray(X, np.float64)
    member_cluster = np.asarray(member_cluster).astype(str)
    is_member = member_cluster != ""
    vhelio, ak = np.asarray(vhelio, np.float64), np.asarray(ak, np.float64)
    members, clusters = X[is_member], member_cluster[is_member]
    plates = None if plates is None else np.asarray(plates).astype(str)
    return _rates(lambda name, idx: members[idx], clusters, lambda name: X[is_field],
                  vhelio[is_member], ak[is_member], vhelio[is_field], ak[is_field],
                  empty, max_dv, max_dak, keep_distances,
                  None if plates is None else plates[is_member],
                  None if plates is None else plates[is_field],
                  None if candidates is None else np.asarray(candidates).astype(str)[is_field])


def loco_evaluate(z_field, z_members, clusters, member_v, member_ak, field_v, field_ak,
                  metric: LatentMetric | None = None, n_dims: int | None = None,
                  train_clusters: dict | None = None, empty: str = "raise",
                  max_dv: float = MAX_DV, max_dak: float = MAX_DAK,
                  keep_distances: bool = False, member_plates=None,
                  field_plates=None, field_candidates=None) -> DoppelgangerResult:
    """Leave-one-cluster-out rate of RSCA steps 2-4 on latents (PPCA latents or abundances).

    Arguments:
        z_field, z_members: latents of the field sample and of the members.
        clusters: (N_members,) cluster names.
        metric: an unfitted :class:`LatentMetric` carrying the options (default: full RSCA,
            plate-robust when the plates are given).
        n_dims: keep the top-n scaled dimensions.
        train_clusters: optional {held-out cluster: list of training clusters} (Fig. 5);
            default: every other cluster.
        member_plates, field_plates: observing group of each star; needed by the
            plate-robust metric (the default) and for the plate-safe rate and checks.
        field_candidates: (N_field,) cluster each field star is a membership candidate of
            ("" for none), left out of the plate-safe rate and the checks.
    """
    clusters = np.asarray(clusters).astype(str)
    check_n_dims(n_dims, np.shape(z_field)[1])
    if (member_plates is None) != (field_plates is None):
        raise ValueError("give the plates of both the members and the field, or neither")
    if member_plates is not None:
        member_plates = np.asarray(member_plates).astype(str)
        field_plates = np.asarray(field_plates).astype(str)
    base = metric or LatentMetric(plate_robust=field_plates is not None)
    base.fit_sphering(z_field, None if field_plates is None else
                      (field_plates, field_v, field_ak))
    y_field = base.sphere(z_field)
    y_members = base.sphere(z_members)
    folds: dict[str, LatentMetric] = {}

    def fold(name: str) -> LatentMetric:
        if name not in folds:
            train = (np.isin(clusters, train_clusters[name]) if train_clusters
                     else clusters != name)
            model = base.sphered_copy()
            folds.clear()  # one fold at a time keeps memory at one field embedding
            folds[name] = model.fit_members(y_members[train], clusters[train])
        return folds[name]

    def embed(name, y):
        model = fold(name)
        return (y @ (model.scaling_[:, None] * model.rotation_).T)[:, :n_dims]

    return _rates(lambda name, idx: embed(name, y_members[idx]), clusters,
                  lambda name: embed(name, y_field), member_v, member_ak, field_v, field_ak,
                  empty, max_dv, max_dak, keep_distances, member_plates, field_plates,
                  None if field_candidates is None else np.asarray(field_candidates).astype(str))
