"""Does a star explain the spectrum, alone or beside the galaxy? Two tests against the catalogue.

The residual tests of :mod:`specsift.catalog.evidence` ask whether the galaxy model fails; a
galaxy blended with a star, or a star faint enough to pass for a galaxy, is often fitted
tolerably by the flexible galaxy model. Two statistics look for the star instead:

``star-like``
    ``STAR_LOGLR`` (ln p(x | star) - ln p(x | galaxy)): the star model alone explains the
    spectrum better than it explains normal galaxies.
``star blend``
    ``STAR_BLEND_F``: how much a star-model component beside the galaxy model improves the fit
    (:func:`blend_improvement`), the extra-sum-of-squares statistic of a two-component model.
    A galaxy with a star in its fibre is fitted by neither model alone, and by the sum of both.

The scale of both depends on the S/N and the survey, so each becomes a tail probability under
"a normal galaxy": the empirical null is the catalogue's own validation-split objects reported
as galaxies (:func:`reference_galaxies`; their split is a hash of the id, so they are a random
15% of the catalogue, scored exactly as every other object). (Nulls in bins of S/N were tried:
the faint bins' tails are then fitted from a few dozen galaxies, and on the seed-2 mock the top
1% fell from 0.57 to 0.40 true anomalies.) Below the null's ``TAIL_FROM`` quantile the p-value is
conformal; above it, an exponential tail fitted by maximum likelihood: both statistics are
differences of chi-squares of nested fits of the same pixels, whose tails are exponential, and a
survey needs p-values far below 1 / (reference objects) for its q-values. The blend statistic's
tail is fitted further out (``BLEND_TAIL_FROM``): a second component also soaks up part of the
misfit of the few galaxies the model fits poorly, and the gain of those sets the far tail; fitted
from the 90th percentile, the tail was too light there and let such galaxies into the top 20. The null holds the odd
anomaly of the validation split too, which makes the p-values conservative.

The catalogue combines these tests with the residual evidence by Bonferroni (:func:`combine`):
``OUTLIER_PVALUE = min(1, k min(p_residuals, p_star_like, p_star_blend))`` over the k tests it has.
"""

from __future__ import annotations

import logging

import numpy as np

from .evidence import SCORE_FORMULA as RESIDUAL_FORMULA

__all__ = ["ValidationNull", "reference_galaxies", "blend_improvement", "combine",
           "MIN_REFERENCE", "TAIL_FROM", "BLEND_TAIL_FROM", "MIN_TAIL",
           "STAR_LIKE", "STAR_BLEND", "SCORE_FORMULA"]

logger = logging.getLogger("specsift.catalog")

MIN_REFERENCE = 100     # fewest reference galaxies for a test; fewer: the test is left out
TAIL_FROM = 0.9         # reference quantile above which the exponential tail gives the p-value
BLEND_TAIL_FROM = 0.98  # the same for the blend test, whose tail steepens far out (see below)
MIN_TAIL = 20           # fewest reference galaxies above that quantile that fit the tail
STAR_LIKE = "star-like"         # OUTLIER_REASON when the star-likeness test decides
STAR_BLEND = "star blend"       # OUTLIER_REASON when the blend test decides
SCORE_FORMULA = ("OUTLIER_SCORE = -log10 OUTLIER_PVALUE, OUTLIER_PVALUE = min(1, k min(p_resid, "
                 "p_star, p_blend)) over the k tests present; p_star, p_blend: tail "
                 "probabilities of STAR_LOGLR and STAR_BLEND_F (galaxy + star model fit against "
                 "the galaxy fit alone) among the catalogue's validation-split galaxies reported as "
                 "such (exponential tails above their 0.9 and 0.98 quantiles); p_resid: p-value against the galaxy model's validation "
                 "split of the residual evidence "
                 + RESIDUAL_FORMULA.replace("OUTLIER_SCORE = ", ""))


class ValidationNull:
    """The distribution of a statistic among normal galaxies, and tail probabilities under it.

    Arguments:
        reference: the statistic of the reference galaxies (non-finite values are left out).
        tail_from: reference quantile above which the exponential tail takes over (lowered, to
            at least ``TAIL_FROM``, until ``MIN_TAIL`` reference galaxies lie above it).

    Example:
        >>> null = ValidationNull(np.linspace(-100.0, 0.0, 1001))
        >>> bool(null.log10_pvalue(np.array([-200.0]))[0] == 0.0)
        True
        >>> bool(null.log10_pvalue(np.array([50.0]))[0] < -5)
        True
    """

    def __init__(self, reference: np.ndarray, tail_from: float = TAIL_FROM):
        ref = np.asarray(reference, dtype=np.float64)
        self.reference_ = np.sort(ref[np.isfinite(ref)])
        if len(self.reference_) < MIN_REFERENCE:
            raise ValueError(f"{len(self.reference_)} reference galaxies for the null; at least "
                             f"{MIN_REFERENCE} are needed")
        self.tail_from_ = max(TAIL_FROM, min(tail_from, 1.0 - MIN_TAIL / len(self.reference_)))
        self.threshold_ = float(np.quantile(self.reference_, self.tail_from_))
        excess = self.reference_[self.reference_ > self.threshold_] - self.threshold_
        self.tail_rate_ = 1.0 / max(float(excess.mean()) if len(excess) else 1.0, 1e-12)

    def log10_pvalue(self, statistic: np.ndarray) -> np.ndarray:
        """(N,) log10 P(a normal galaxy has at least this value); 0 where unknown."""
        x = np.asarray(statistic, dtype=np.float64)
        ref, n = self.reference_, len(self.reference_)
        at_least = n - np.searchsorted(ref, np.nan_to_num(x, nan=-np.inf), side="left")
        conformal = np.log10((1.0 + at_least) / (n + 1.0))
        tail = np.log10(1.0 - self.tail_from_) \
            - self.tail_rate_ * (x - self.threshold_) / np.log(10.0)
        with np.errstate(invalid="ignore"):
            out = np.where(x > self.threshold_, tail, conformal)
        return np.where(np.isfinite(x), out, 0.0)

    @classmethod
    def from_catalog(cls, statistic: np.ndarray, split: np.ndarray | None,
                     galaxies: np.ndarray, test: str,
                     tail_from: float = TAIL_FROM) -> ValidationNull | None:
        """The null from the validation-split ``galaxies``; None (and a log line naming
        ``test``) where the catalogue has no split column or too few of them."""
        if split is None:
            logger.info("no SPLIT column: OUTLIER_SCORE leaves out the %s test", test)
            return None
        chosen = (np.char.strip(np.asarray(split).astype(str)) == "validation") & galaxies
        try:
            return cls(np.asarray(statistic, dtype=np.float64)[chosen], tail_from)
        except ValueError as error:
            logger.info("%s: OUTLIER_SCORE leaves out the %s test", error, test)
            return None


def reference_galaxies(meta, is_star: np.ndarray) -> np.ndarray:
    """The objects a null of normal galaxies is drawn from: those the survey reported as
    galaxies (``SPECTYPE``), else those the star/galaxy rule calls galaxies.

    Why the survey's class first: the rule's galaxies stop where the rule starts calling
    objects stars, so a null drawn from them has no galaxy the star model fits better, and
    every faint galaxy the rule calls a star would look impossible under it."""
    if "SPECTYPE" in meta.colnames:
        return np.char.strip(np.asarray(meta["SPECTYPE"]).astype(str)) == "GALAXY"
    return ~np.asarray(is_star, dtype=bool)


def blend_improvement(flux: np.ndarray, weight: np.ndarray, galaxy: np.ndarray,
                      star: np.ndarray) -> np.ndarray:
    """(B,) ``STAR_BLEND_F``: the chi-square gained by fitting ``a galaxy + b star`` (a, b free)
    instead of the galaxy model alone, in units of the two-component fit's reduced chi-square
    (at least 1, so that a model that fits below the noise does not inflate it).

    This is the numerator of the extra-sum-of-squares F test for the star component (the
    scale refit rides along); it is 0 where the star adds nothing. ``galaxy`` and ``star`` are
    the two models on the observed pixels (the star's in any flux units: ``b`` absorbs them),
    ``weight`` the inverse variance (0 where a pixel is not used). NaN without three valid pixels.

    Example:
        >>> x = np.linspace(0, 1, 50)[None]
        >>> g, s = np.ones_like(x), x
        >>> blend_improvement(g + 0.5 * s, np.full_like(x, 1e4), g, s).round()
        array([42092.])
    """
    flux, weight = np.asarray(flux, np.float64), np.asarray(weight, np.float64)
    g, s = np.nan_to_num(np.asarray(galaxy, np.float64)), np.nan_to_num(np.asarray(star, np.float64))
    weight = np.where(np.isfinite(flux), weight, 0.0)
    flux = np.nan_to_num(flux)
    gg, gs, ss = (weight * g * g).sum(1), (weight * g * s).sum(1), (weight * s * s).sum(1)
    xg, xs = (weight * flux * g).sum(1), (weight * flux * s).sum(1)
    det = gg * ss - gs * gs
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(det > 0, (ss * xg - gs * xs) / det, 1.0)
        b = np.where(det > 0, (gg * xs - gs * xg) / det, 0.0)
        alone = (weight * (flux - g) ** 2).sum(1)
        joint = (weight * (flux - a[:, None] * g - b[:, None] * s) ** 2).sum(1)
        n = (weight > 0).sum(1)
        scale = np.maximum(joint / np.maximum(n - 2, 1), 1.0)
        out = np.maximum(alone - joint, 0.0) / scale
    return np.where(n >= 3, out, np.nan)


def combine(*log10_pvalues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log10 p, index of the deciding test)``: the Bonferroni combination of the tests.

    Example:
        >>> p, decides = combine(np.array([-3.0, -1.0]), np.array([-1.0, -4.0]))
        >>> p.round(2).tolist(), decides.tolist()
        ([-2.7, -3.7], [0, 1])
    """
    tests = np.stack([np.asarray(p, dtype=np.float64) for p in log10_pvalues])
    decides = np.argmin(np.where(np.isnan(tests), np.inf, tests), axis=0)
    best = np.take_along_axis(tests, decides[None], axis=0)[0]
    best = np.where(np.isnan(tests[0]), np.nan, best)
    return np.minimum(best + np.log10(len(tests)), 0.0), decides
