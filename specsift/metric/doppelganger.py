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

import numpy as np

from ..errors import SpecsiftInputError
from .rsca import LatentMetric

__all__ = ["cluster_distances", "doppelganger_rate", "loco_evaluate", "DoppelgangerResult",
           "MAX_DV", "MAX_DAK"]

logger = logging.getLogger("specsift.metric")

MAX_DV = 5.0     # km/s
MAX_DAK = 0.05   # mag


@dataclass
class DoppelgangerResult:
    """Per-cluster and global doppelganger rates (see module docstring)."""

    global_rate: float
    per_cluster: dict[str, float]
    sizes: dict[str, int]
    n_field: int
    n_members: int
    n_pairs: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    distances: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"global_rate": self.global_rate, "per_cluster": self.per_cluster,
                "cluster_sizes": self.sizes, "field_pairs": self.n_pairs,
                "n_field": self.n_field, "n_members": self.n_members,
                "skipped_clusters": self.skipped}


def cluster_distances(members, field_emb, member_v, member_ak, field_v, field_ak,
                      max_dv: float = MAX_DV, max_dak: float = MAX_DAK, chunk: int = 65536
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Sibling-pair distances and member-field distances of the pairs passing the RV/AK cut.

    Distances use ``|a|^2 + |b|^2 - 2 a.b`` in blocks of ``chunk`` field stars (one matmul each).
    """
    members = np.asarray(members, np.float64)
    diff = members[:, None, :] - members[None, :, :]
    upper = np.triu_indices(len(members), 1)
    sibling = np.sqrt((diff ** 2).sum(-1))[upper]
    m2 = (members ** 2).sum(1)[:, None]
    kept = []
    for start in range(0, len(field_emb), chunk):
        f = np.asarray(field_emb[start:start + chunk], np.float64)
        ok = ((np.abs(member_v[:, None] - field_v[None, start:start + chunk]) < max_dv)
              & (np.abs(member_ak[:, None] - field_ak[None, start:start + chunk]) < max_dak))
        if ok.any():
            d2 = m2 + (f ** 2).sum(1)[None, :] - 2.0 * members @ f.T
            kept.append(np.sqrt(np.clip(d2, 0.0, None))[ok])
    return sibling, (np.concatenate(kept) if kept else np.empty(0))


def _rates(embed_members, clusters, embed_field, member_v, member_ak, field_v, field_ak,
           empty: str, max_dv: float, max_dak: float, keep: bool = False) -> DoppelgangerResult:
    """Rates given callables embedding a cluster's members and the field (per cluster)."""
    per, sizes, pairs, skipped, kept = {}, {}, {}, [], {}
    names = np.unique(clusters)
    for name in names:
        idx = np.flatnonzero(clusters == name)
        if len(idx) < 2:
            raise SpecsiftInputError(f"cluster {name} has a single member; no sibling distance")
        members, field_emb = embed_members(name, idx), embed_field(name)
        sibling, to_field = cluster_distances(members, field_emb, member_v[idx], member_ak[idx],
                                              field_v, field_ak, max_dv, max_dak)
        if not len(to_field):
            if empty == "raise":
                raise SpecsiftInputError(
                    f"cluster {name}: no field star within {max_dv} km/s in VHELIO_AVG and "
                    f"{max_dak} in AK_TARG of any member, so its doppelganger rate is undefined"
                    " (skip such clusters with empty='skip', or --skip-empty on the CLI)")
            skipped.append(str(name))
            logger.info("cluster %s skipped: no field pair passes the RV/AK cut", name)
            continue
        per[str(name)] = float(np.mean(to_field < np.median(sibling)))
        sizes[str(name)] = len(idx)
        pairs[str(name)] = len(to_field)
        if keep:
            kept[str(name)] = (sibling, to_field)
    if not per:
        raise SpecsiftInputError("no cluster has a field pair passing the RV/AK cut")
    weights = np.array([sizes[k] for k in per])
    rate = float(np.dot(weights, list(per.values())) / weights.sum())
    return DoppelgangerResult(rate, per, sizes, len(field_v), len(clusters), pairs, skipped, kept)


def doppelganger_rate(X, member_cluster, is_field, vhelio, ak, max_dv: float = MAX_DV,
                      max_dak: float = MAX_DAK, empty: str = "raise",
                      keep_distances: bool = False) -> DoppelgangerResult:
    """Plain (no cross-validation) rate of the representation X (rows = stars).

    Arguments:
        X: (N, K) embedding of every star.
        member_cluster: (N,) cluster name, "" for non-members.
        is_field: (N,) bool, the field sample.
        vhelio, ak: (N,) VHELIO_AVG and AK_TARG.
        empty: "raise" (default) or "skip" for a cluster without any valid field pair.
        keep_distances: store each cluster's sibling and field distances (for histograms).
    """
    X = np.asarray(X, np.float64)
    member_cluster = np.asarray(member_cluster).astype(str)
    is_member = member_cluster != ""
    vhelio, ak = np.asarray(vhelio, np.float64), np.asarray(ak, np.float64)
    members, clusters = X[is_member], member_cluster[is_member]
    return _rates(lambda name, idx: members[idx], clusters, lambda name: X[is_field],
                  vhelio[is_member], ak[is_member], vhelio[is_field], ak[is_field],
                  empty, max_dv, max_dak, keep_distances)


def loco_evaluate(z_field, z_members, clusters, member_v, member_ak, field_v, field_ak,
                  metric: LatentMetric | None = None, n_dims: int | None = None,
                  train_clusters: dict | None = None, empty: str = "raise",
                  max_dv: float = MAX_DV, max_dak: float = MAX_DAK,
                  keep_distances: bool = False) -> DoppelgangerResult:
    """Leave-one-cluster-out rate of RSCA steps 2-4 on latents (PPCA latents or abundances).

    Arguments:
        z_field, z_members: latents of the field sample and of the members.
        clusters: (N_members,) cluster names.
        metric: an unfitted :class:`LatentMetric` carrying the options (default: full RSCA).
        n_dims: keep the top-n scaled dimensions.
        train_clusters: optional {held-out cluster: list of training clusters} (Fig. 5);
            default: every other cluster.
    """
    clusters = np.asarray(clusters).astype(str)
    base = metric or LatentMetric()
    base.fit_sphering(z_field)
    y_field = base.sphere(z_field)
    y_members = base.sphere(z_members)
    folds: dict[str, LatentMetric] = {}

    def fold(name: str) -> LatentMetric:
        if name not in folds:
            train = (np.isin(clusters, train_clusters[name]) if train_clusters
                     else clusters != name)
            model = LatentMetric(base.whiten, base.rotate, base.relative_scaling)
            model.center_, model.sphering_ = np.zeros(y_field.shape[1]), np.eye(y_field.shape[1])
            folds.clear()  # one fold at a time keeps memory at one field embedding
            folds[name] = model.fit_members(y_members[train], clusters[train])
        return folds[name]

    def embed(name, y):
        model = fold(name)
        return (y @ (model.scaling_[:, None] * model.rotation_).T)[:, :n_dims]

    return _rates(lambda name, idx: embed(name, y_members[idx]), clusters,
                  lambda name: embed(name, y_field), member_v, member_ak, field_v, field_ak,
                  empty, max_dv, max_dak, keep_distances)
