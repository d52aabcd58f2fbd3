"""Ranking metrics: how well a score puts the true positives first."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["roc_auc", "top_fraction_precision", "top_count_precision"]


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > that of a random negative).

    Mann-Whitney U with mid-ranks, so ties count one half; NaN without positives or negatives.

    Example:
        >>> roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, False, False, False]))
        1.0
        >>> roc_auc(np.array([1.0, 1.0]), np.array([True, False]))
        0.5
    """
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_count_precision(score: np.ndarray, positive: np.ndarray, n_top: int) -> float:
    """Fraction of true positives among the ``n_top`` highest scores (ties: first come first).

    Example:
        >>> top_count_precision(np.array([3.0, 2.0, 1.0]), np.array([True, False, True]), 2)
        0.5
    """
    if not len(score):
        return float("nan")
    top = np.argsort(-np.asarray(score, float), kind="stable")[:max(1, int(n_top))]
    return float(np.asarray(positive, bool)[top].mean())


def top_fraction_precision(score: np.ndarray, positive: np.ndarray,
                           fraction: float = 0.01) -> float:
    """Fraction of true positives among the ``fraction`` highest scores (at least one)."""
    return top_count_precision(score, positive, max(1, int(round(fraction * len(score)))))
