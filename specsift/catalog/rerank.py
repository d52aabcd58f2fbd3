"""Re-rank a catalogue from a reviewer's labels (human-in-the-loop, after Astronomaly).

The unsupervised score finds objects that are *unusual*; a reviewer wants the ones that are
*interesting*, and most unusual objects (stars in a galaxy sample, broken arms) are not. After
a few dozen labels, :func:`rerank` learns which directions of the catalogue features the
reviewer cares about and re-weights the unsupervised score with that relevance where the labels
can be trusted, as Astronomaly does (Lochner & Bassett 2021, A&C 36, 100481, arXiv:2010.11202;
``NeighbourScore`` in ``astronomaly/anomaly_detection/human_loop_learning.py``):

* **features** (:func:`review_features`): the catalogue's latents when it has them (a vector
  column whose name contains ``LATENT``, or scalar columns ``LATENT*_k`` / ``Z_GAL_k``), its
  residual features (columns starting with ``RESID``), the fit and density scores (log of
  ``CHI2_GALAXY``, ``CHI2_STAR``; signed log of ``LOGP_*``, ``STAR_LOGLR``), ``IS_STAR``, ``Z``,
  log ``SNR``, and one-hot codes of ``OUTLIER_REASON`` (the whole reason and its first word) and of
  the reported ``SPECTYPE``; each standardised by its median and robust spread, clipped at
  +-5 sigma, missing values at the median.
* **relevance** ``u(x)`` (:class:`RelevanceModel`): an L2-regularised logistic regression of
  "interesting" (1) against "not interesting" and "artefact" (0) on those features, fitted by
  Newton's method; its weights are the directions the reviewer finds interesting.
  (Astronomaly fits a random forest to 0-5 user scores; a linear model needs no extra
  dependency, is exactly reproducible, and extrapolates a direction rather than a box, which
  matters with a few dozen labels in 20+ dimensions.)
* **trust** ``t(x) = exp(-d(x) / mean(d))``, ``d`` the distance to the nearest labelled object:
  the relevance is believed near what was labelled and not far from it.
* **combination**: ``REVIEW_SCORE = s * (t f(u) + (1 - t))`` with the unsupervised score on a
  tail scale, ``s = ln(N / RANK)`` (the -ln of the empirical p-value, so the top of the list is
  spread out and a factor 2 moves an object by a factor ~N^(1/2)... of the list), and
  ``f(u) = f_min + (f_max - f_min) u`` (``f_min = 0.1`` as Astronomaly, ``f_max = 1.9``). Far from
  any label an object keeps its unsupervised score; near labels it is demoted (u -> 0, down to
  0.1 s) or promoted (u -> 1, up to 1.9 s). Astronomaly's own combination,
  ``s tanh(exp(alpha d / mean d) - 1 + arctanh(0.1 + 0.85 u))``, can only demote; it is
  available as ``method="astronomaly"`` and the benchmark reports both.

Labelled objects are ranked after every unlabelled one (``REVIEW_RANK`` N_unlabelled+1...),
so the top of ``REVIEW_RANK`` is the next list to review. Everything is deterministic: no
random numbers, ties broken by the unsupervised ``RANK``.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from ..errors import SpecsiftInputError

__all__ = ["review_features", "RelevanceModel", "rerank", "rerank_catalog", "METHODS"]

logger = logging.getLogger("specsift.catalog")

METHODS = ("specsift", "astronomaly")

_SCORES_LOG = ("CHI2_GALAXY", "CHI2_STAR", "SNR")
_SCORES_SIGNED = ("LOGP_GALAXY", "LOGP_STAR", "STAR_LOGLR")
_SCORES_PLAIN = ("Z", "IS_STAR")
_CATEGORIES = ("OUTLIER_REASON", "SPECTYPE")
_LATENT_SCALAR = re.compile(r"^(LATENTS?\w*|Z_GAL|Z_STAR)_\d+$")


def _numeric(column) -> np.ndarray:
    data = np.ma.filled(np.ma.asarray(column).astype(np.float64), np.nan)
    return np.asarray(data, dtype=np.float64)


def _text(column) -> np.ndarray:
    data = np.ma.filled(np.ma.asarray(column), "") if hasattr(column, "mask") else \
        np.asarray(column)
    if data.dtype.kind == "S":
        data = np.char.decode(data, "ascii", errors="replace")
    return np.char.strip(np.asarray(data, dtype=str))


def review_features(table, extra: tuple[str, ...] = ()) -> tuple[np.ndarray, list[str]]:
    """Raw feature matrix (N, F) of a catalogue and the feature names (see the module docs).

    ``extra`` names further numeric columns to use. Columns the catalogue lacks are skipped, so
    an older catalogue (no latents, no OUTLIER_REASON) still works on what it has.
    """
    columns, names = [], []

    def add(values, name):
        columns.append(np.asarray(values, dtype=np.float64))
        names.append(name)

    for name in table.colnames:
        data = np.asarray(table[name])
        if data.ndim == 2 and "LATENT" in name.upper() and data.dtype.kind in "fiu":
            for k in range(data.shape[1]):
                add(_numeric(data[:, k]), f"{name}[{k}]")
        elif data.ndim == 1 and data.dtype.kind in "fiu" and (
                _LATENT_SCALAR.match(name) or name.upper().startswith("RESID")):
            add(_numeric(table[name]), name)
    for name in _SCORES_LOG:
        if name in table.colnames:
            add(np.log10(np.clip(_numeric(table[name]), 1e-3, None)), f"log {name}")
    for name in _SCORES_SIGNED:
        if name in table.colnames:
            value = _numeric(table[name])
            add(np.sign(value) * np.log1p(np.abs(value)), f"slog {name}")
    for name in (*_SCORES_PLAIN, *extra):
        if name in table.colnames and name not in names:
            add(_numeric(table[name]), name)
        elif name in extra:
            raise SpecsiftInputError(f"the catalogue has no column {name} (--features)")
    for name in _CATEGORIES:
        if name not in table.colnames:
            continue
        text = _text(table[name])
        levels = {value for value in np.unique(text) if value}
        if name == "OUTLIER_REASON":
            levels |= {f"{value.split()[0]} *" for value in levels}
        for level in sorted(levels):
            if level.endswith(" *"):
                hit = np.char.startswith(text, level[:-1])
            else:
                hit = text == level
            if 0 < hit.sum() < len(text):
                add(hit.astype(np.float64), f"{name}={level}")
    if not columns:
        raise SpecsiftInputError("the catalogue has none of the review features (latents, "
                                 "CHI2_*, LOGP_*, STAR_LOGLR, Z, SNR, OUTLIER_REASON)")
    return np.column_stack(columns), names


def _standardise(raw: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """Median and robust spread (1.4826 MAD, or the std when the MAD is 0) per column; +-clip."""
    out = np.empty_like(raw)
    for k in range(raw.shape[1]):
        column = raw[:, k]
        finite = np.isfinite(column)
        if not finite.any():
            out[:, k] = 0.0
            continue
        centre = np.median(column[finite])
        spread = 1.4826 * np.median(np.abs(column[finite] - centre))
        if not spread > 0:
            spread = np.std(column[finite])
        spread = spread if spread > 0 else 1.0
        out[:, k] = np.clip(np.where(finite, (column - centre) / spread, 0.0), -clip, clip)
    return out


class RelevanceModel:
    """L2-regularised logistic regression P(interesting | features), fitted by Newton's method.

    Arguments:
        penalty: L2 strength on the weights and on the intercept (the prior is u = 0.5
            everywhere: with few labels the relevance stays moderate).
        max_iter, tol: Newton iterations and the step size at which they stop.

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> model = RelevanceModel(penalty=0.1).fit(x, np.array([0, 0, 1, 1]))
        >>> bool(model.predict(np.array([[3.0]]))[0] > 0.5 > model.predict(np.array([[0.0]]))[0])
        True
    """

    def __init__(self, penalty: float = 1.0, max_iter: int = 50, tol: float = 1e-8):
        if penalty <= 0:
            raise ValueError(f"penalty must be positive, not {penalty}")
        self.penalty, self.max_iter, self.tol = float(penalty), int(max_iter), float(tol)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RelevanceModel":
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(y) or not len(y):
            raise ValueError(f"need (n, f) features and n labels, got {x.shape} and {y.shape}")
        design = np.column_stack([np.ones(len(x)), x])
        weights = np.zeros(design.shape[1])
        ridge = self.penalty * np.eye(design.shape[1])
        for _ in range(self.max_iter):
            p = 1.0 / (1.0 + np.exp(-design @ weights))
            gradient = design.T @ (p - y) + ridge @ weights
            hessian = (design * (p * (1 - p))[:, None]).T @ design + ridge
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if np.max(np.abs(step)) < self.tol:
                break
        self.intercept_, self.coef_ = float(weights[0]), weights[1:]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(interesting) of each row of ``x``."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("RelevanceModel.predict before fit")
        return 1.0 / (1.0 + np.exp(-(np.asarray(x, np.float64) @ self.coef_ + self.intercept_)))


def _nearest_distance(x: np.ndarray, labelled: np.ndarray, block: int = 4096) -> np.ndarray:
    """Euclidean distance of each row of ``x`` to its nearest row of ``labelled``."""
    out = np.empty(len(x))
    norms = np.einsum("ij,ij->i", labelled, labelled)
    for start in range(0, len(x), block):
        part = x[start:start + block]
        d2 = np.einsum("ij,ij->i", part, part)[:, None] - 2 * part @ labelled.T + norms[None]
        out[start:start + block] = np.sqrt(np.clip(d2.min(axis=1), 0, None))
    return out


def rerank(table, labels: dict[str, dict], method: str = "specsift", penalty: float = 1.0,
           f_min: float = 0.1, f_max: float = 1.9, alpha: float = 1.0,
           extra: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], dict]:
    """Relevance and review ranking of every catalogue row from ``labels``.

    Arguments:
        table: the catalogue (needs ``TARGETID`` and ``RANK``).
        labels: ``{TARGETID: {"label": ...}}`` as :func:`specsift.catalog.labels.read_labels`
            returns them (checked against the catalogue there).
        method: ``specsift`` (promote and demote, module docs) or ``astronomaly`` (their
            ``NeighbourScore.anom_func``, demote only, with ``alpha``).
        penalty: L2 strength of :class:`RelevanceModel`.
        f_min, f_max: the score factor at relevance 0 and 1 (``specsift``).
        extra: further numeric columns to use as features.

    Returns:
        the new columns (``RELEVANCE``, ``REVIEW_TRUST``, ``REVIEW_SCORE``, ``REVIEW_RANK``,
        ``REVIEW_LABEL``) and a summary dict (counts, the strongest feature directions).
    """
    if method not in METHODS:
        raise ValueError(f"unknown re-rank method {method!r}; choose one of {', '.join(METHODS)}")
    for name in ("TARGETID", "RANK"):
        if name not in table.colnames:
            raise SpecsiftInputError(f"the catalogue has no {name} column")
    ids = np.array([str(t) for t in np.asarray(table["TARGETID"]).tolist()])
    label = np.array([labels.get(t, {}).get("label", "") for t in ids])
    known = label != ""
    if not known.any():
        raise SpecsiftInputError("none of the labels is of an object of this catalogue")
    raw, names = review_features(table, extra)
    x = _standardise(raw)
    y = (label[known] == "interesting").astype(np.float64)
    model = RelevanceModel(penalty=penalty).fit(x[known], y)
    relevance = model.predict(x)
    distance = _nearest_distance(x, x[known])
    scale = float(np.mean(distance)) or 1.0
    rank = np.asarray(table["RANK"], dtype=np.float64)
    score = np.log(len(rank) / np.clip(rank, 1, None)) + 1e-9
    if method == "specsift":
        trust = np.exp(-distance / scale)
        factor = trust * (f_min + (f_max - f_min) * relevance) + (1 - trust)
    else:
        f_u = 0.1 + 0.85 * relevance
        factor = np.tanh(np.exp(alpha * distance / scale) - 1 + np.arctanh(f_u))
        trust = 1 - np.tanh(np.exp(alpha * distance / scale) - 1)
    review_score = score * factor
    order = np.lexsort((rank, -review_score, known))     # unlabelled first, then by score
    review_rank = np.empty(len(rank), dtype=np.int64)
    review_rank[order] = np.arange(1, len(rank) + 1)
    strongest = np.argsort(-np.abs(model.coef_), kind="stable")[:5]
    summary = {"labelled": int(known.sum()), "interesting": int(y.sum()),
               "not_interesting": int((label == "not_interesting").sum()),
               "artefact": int((label == "artefact").sum()), "method": method,
               "features": len(names),
               "directions": {names[k]: round(float(model.coef_[k]), 3) for k in strongest}}
    columns = {"RELEVANCE": relevance, "REVIEW_TRUST": trust, "REVIEW_SCORE": review_score,
               "REVIEW_RANK": review_rank, "REVIEW_LABEL": label}
    return columns, summary


def rerank_catalog(catalog, labels_path, out, method: str = "specsift", penalty: float = 1.0,
                   extra: tuple[str, ...] = ()) -> dict:
    """``specsift rerank``: read a catalogue and its labels, write the re-ranked catalogue.

    The output has every input column (an earlier review's columns are replaced) plus those of
    :func:`rerank`; its metadata adds ``REVIEW`` (labels file, fingerprint, counts, method and
    the strongest feature directions). Returns that summary.
    """
    from pathlib import Path

    from .labels import catalog_fingerprint, read_labels
    from .writer import read_catalog, write_catalog

    table, metadata = read_catalog(catalog)
    if "TARGETID" not in table.colnames:
        raise SpecsiftInputError("catalogue has no TARGETID column", path=catalog)
    fingerprint = catalog_fingerprint(table["TARGETID"])
    labels = read_labels(labels_path, fingerprint, table["TARGETID"])
    if not labels:
        raise SpecsiftInputError("no labels yet: label some objects on the review page first",
                                 path=labels_path)
    columns, summary = rerank(table, labels, method=method, penalty=penalty, extra=extra)
    for name, values in columns.items():
        table[name] = values
    summary = {"labels": str(Path(labels_path).resolve()), "fingerprint": fingerprint,
               "penalty": penalty, **summary}
    write_catalog(table, out, {**metadata, "REVIEW": summary})
    logger.info("re-ranked from %d labels (%d interesting): strongest directions %s",
                summary["labelled"], summary["interesting"], summary["directions"])
    return summary
