"""Systematics shared by stars observed together, and how to keep a metric from learning them.

Open-cluster members are observed on the same plate and at the same radial velocity, so
whatever the plate imprints on their spectra (continuum and flat-field patterns, the
line-spread function, and sky and telluric residuals, which land on the same rest-frame pixels
for stars of equal velocity) is shared by siblings and not by field stars elsewhere. A metric
trained to bring siblings together then partly learns the plate (de Mijolla & Ness 2022,
App. C). Field stars are placed on plates without regard to their chemistry, so what two field
stars of matching velocity and extinction share when they are on one plate, and do not share
when they are on two, is instrumental: :func:`plate_covariance` estimates it.

"Observed together" comes from the catalogue (:func:`observing_groups`): allStar's
``LOCATION_ID`` (the plate's field), else ``FIELD``, else ``PLATE``.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecsiftInputError
from ..io.catalogs import OBSERVING_COLUMNS

__all__ = ["observing_groups", "plate_covariance", "matched_pairs"]


def observing_groups(table, column: str | None = None) -> np.ndarray:
    """Per catalogue row, a label shared by the stars observed together (str array).

    ``column`` names the catalogue column; by default the first of ``LOCATION_ID``, ``FIELD``, ``PLATE``
    present. Raises :class:`SpecsiftInputError` when none is there.
    """
    names = table.colnames if hasattr(table, "colnames") else list(table)
    choices = (column,) if column else OBSERVING_COLUMNS
    for name in choices:
        if name in names:
            values = np.asarray(table[name])
            return np.char.strip(values.astype(str))
    source = getattr(table, "meta", {}).get("FILENAME")
    raise SpecsiftInputError(f"the catalogue has no {' / '.join(choices)} column to tell which "
                             "stars were observed together", source)


def matched_pairs(vhelio: np.ndarray, ak: np.ndarray, max_dv: float, max_dak: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j by velocity) with ``|dv| < max_dv`` and ``|dA_K| < max_dak``."""
    order = np.argsort(vhelio, kind="stable")
    v = np.asarray(vhelio, np.float64)[order]
    counts = np.searchsorted(v, v + max_dv, "left") - np.arange(len(v)) - 1
    first = np.repeat(np.arange(len(v)), counts)
    second = first + 1 + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    i, j = order[first], order[second]
    ok = np.abs(np.asarray(ak)[i] - np.asarray(ak)[j]) < max_dak
    return i[ok], j[ok]


def plate_covariance(y: np.ndarray, plates, vhelio, ak, max_dv: float = 2.0,
                     max_dak: float = 0.05, n_permutations: int = 200, level: float = 0.99,
                     max_pairs: int = 400_000, seed: int = 0) -> np.ndarray:
    """Covariance of what field stars observed together share, from their latents ``y`` (N, K).

    Among field pairs matched like siblings (velocities within ``max_dv`` km/s, extinctions
    within ``max_dak``), a pair on one plate differs by ``2 (C - S)`` and a pair on two plates
    by ``2 C``, with ``S`` the shared covariance; so ``S = (E_two[dd^T] - E_one[dd^T]) / 2``.
    Only eigen-directions of ``S`` above the ``level`` quantile of its largest eigenvalue after
    shuffling the plates among the field stars (``n_permutations`` times) are kept, so that a
    representation without systematics gets ``S = 0``. Why 200 shuffles: with 20, the 0.99
    quantile is simply their maximum, and about one fit in 20 keeps a spurious direction.
    At most ``max_pairs`` pairs on two plates are used (a random subset). Returns (K, K).
    """
    y = np.asarray(y, np.float64)
    k = y.shape[1]
    _, label = np.unique(np.asarray(plates).astype(str), return_inverse=True)
    i, j = matched_pairs(vhelio, ak, max_dv, max_dak)
    rng = np.random.default_rng(seed)
    if len(i) > 4 * max_pairs:   # the one-plate pairs are a small share: keep them all
        keep = (label[i] == label[j]) | (rng.random(len(i)) < 4 * max_pairs / len(i))
        i, j = i[keep], j[keep]
    diff = y[i] - y[j]

    def shared(lab: np.ndarray) -> np.ndarray | None:
        one = lab[i] == lab[j]
        if one.sum() < k or (~one).sum() < k:
            return None
        two = np.flatnonzero(~one)
        if len(two) > max_pairs:
            two = rng.choice(two, max_pairs, replace=False)
        d1, d2 = diff[one], diff[two]
        return (d2.T @ d2 / len(d2) - d1.T @ d1 / len(d1)) / 2

    estimate = shared(label)
    if estimate is None:
        return np.zeros((k, k))
    null = [np.linalg.eigvalsh(s).max() for s in
            (shared(rng.permutation(label)) for _ in range(n_permutations)) if s is not None]
    threshold = max(np.quantile(null, level), 0.0) if null else 0.0
    lam, vec = np.linalg.eigh(estimate)
    strength = np.where(lam > threshold, lam, 0.0)
    return (vec * strength) @ vec.T
