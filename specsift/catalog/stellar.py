"""The star-likeness test: does the star model explain a galaxy's spectrum unusually well?

The residual tests of :mod:`specsift.catalog.evidence` ask whether the galaxy model fails; a
galaxy blended with a star, or a star faint enough to pass for a galaxy, is often fitted
tolerably by the flexible galaxy model, and yet the star model explains its spectrum better
than it explains any normal galaxy's. ``STAR_LOGLR`` (ln p(x | star) - ln p(x | galaxy)) measures
exactly that, but its scale depends on the S/N and the survey, so it becomes a tail
probability under "a normal galaxy": the empirical null is the catalogue's own validation-split
objects classified as galaxies (their split is a hash of the id, so they are a random 15% of the
catalogue, scored exactly as every other object). Below the null's ``TAIL_FROM`` quantile the
p-value is conformal; above it, an exponential tail fitted by maximum likelihood: the log
likelihood ratio of two fits of the same pixels has an exponential tail, and a survey needs
p-values far below 1 / (reference objects) for its q-values. The null holds the odd anomaly
of the validation split too, which makes the p-values conservative.

The catalogue combines this test with the residual evidence by Bonferroni over the two
(:func:`combine`): ``OUTLIER_PVALUE = min(1, 2 min(p_residuals, p_star_like))``.
"""

from __future__ import annotations

import logging

import numpy as np

from .evidence import SCORE_FORMULA as RESIDUAL_FORMULA

__all__ = ["StarLikeNull", "combine", "MIN_REFERENCE", "TAIL_FROM", "REASON", "SCORE_FORMULA"]

logger = logging.getLogger("specsift.catalog")

MIN_REFERENCE = 100     # fewest reference galaxies for the test; fewer: the test is left out
TAIL_FROM = 0.9         # reference quantile above which the exponential tail gives the p-value
REASON = "star-like"    # OUTLIER_REASON when this test decides
SCORE_FORMULA = ("OUTLIER_SCORE = -log10 OUTLIER_PVALUE, OUTLIER_PVALUE = min(1, 2 min(p_resid, "
                 "p_star)); p_star: tail probability of STAR_LOGLR among the catalogue's "
                 "validation-split galaxies (exponential tail above their 0.9 quantile); p_resid: "
                 "p-value against the galaxy model's validation split of the residual evidence "
                 + RESIDUAL_FORMULA.replace("OUTLIER_SCORE = ", ""))


class StarLikeNull:
    """The distribution of ``STAR_LOGLR`` among normal galaxies, and tail probabilities under it.

    Arguments:
        reference: log likelihood ratios of the reference galaxies (non-finite ones are left
            out).

    Example:
        >>> null = StarLikeNull(np.linspace(-100.0, 0.0, 1001))
        >>> bool(null.log10_pvalue(np.array([-200.0]))[0] == 0.0)
        True
        >>> bool(null.log10_pvalue(np.array([50.0]))[0] < -5)
        True
    """

    def __init__(self, reference: np.ndarray):
        ref = np.asarray(reference, dtype=np.float64)
        self.reference_ = np.sort(ref[np.isfinite(ref)])
        if len(self.reference_) < MIN_REFERENCE:
            raise ValueError(f"{len(self.reference_)} reference galaxies for the star-likeness "
                             f"null; at least {MIN_REFERENCE} are needed")
        self.threshold_ = float(np.quantile(self.reference_, TAIL_FROM))
        excess = self.reference_[self.reference_ > self.threshold_] - self.threshold_
        self.tail_rate_ = 1.0 / max(float(excess.mean()) if len(excess) else 1.0, 1e-12)

    def log10_pvalue(self, log_ratio: np.ndarray) -> np.ndarray:
        """(N,) log10 P(a normal galaxy has at least this ``STAR_LOGLR``); 0 where unknown."""
        x = np.asarray(log_ratio, dtype=np.float64)
        ref, n = self.reference_, len(self.reference_)
        at_least = n - np.searchsorted(ref, np.nan_to_num(x, nan=-np.inf), side="left")
        conformal = np.log10((1.0 + at_least) / (n + 1.0))
        tail = np.log10(1.0 - TAIL_FROM) - self.tail_rate_ * (x - self.threshold_) / np.log(10.0)
        with np.errstate(invalid="ignore"):
            out = np.where(x > self.threshold_, tail, conformal)
        return np.where(np.isfinite(x), out, 0.0)

    @classmethod
    def from_catalog(cls, log_ratio: np.ndarray, split: np.ndarray | None,
                     is_star: np.ndarray) -> StarLikeNull | None:
        """The null from the validation-split objects classified as galaxies; None (and a log
        line) where the catalogue has no split column or too few of them."""
        if split is None:
            logger.info("no SPLIT column: OUTLIER_SCORE leaves out the star-likeness test")
            return None
        chosen = (np.char.strip(np.asarray(split).astype(str)) == "validation") & ~is_star
        try:
            return cls(np.asarray(log_ratio, dtype=np.float64)[chosen])
        except ValueError as error:
            logger.info("%s: OUTLIER_SCORE leaves out the star-likeness test", error)
            return None


def combine(log10_p_residuals: np.ndarray, log10_p_star_like: np.ndarray) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    """``(log10 p, star test decides)``: the Bonferroni combination of the two tests.

    Example:
        >>> p, star = combine(np.array([-3.0, -1.0]), np.array([-1.0, -4.0]))
        >>> p.round(2).tolist(), star.tolist()
        ([-2.7, -3.7], [False, True])
    """
    residuals = np.asarray(log10_p_residuals, dtype=np.float64)
    star_like = np.asarray(log10_p_star_like, dtype=np.float64)
    star_decides = star_like < residuals
    best = np.where(star_decides, star_like, residuals)
    return np.minimum(best + np.log10(2.0), 0.0), star_decides
