"""Star or galaxy: a log likelihood ratio between the star model and the galaxy model.

Each model gives two numbers per object: how well it reconstructs the spectrum (reduced chi2 over
the valid pixels) and how typical the object's latents are (flow log-density). The evidence of a
model is approximately ``ln p(x | s) + ln p(s)`` at the object's latents s (MAP approximation),
and with Gaussian noise ``ln p(x | s) = -chi2 / 2`` up to a constant shared by both models. The
default rule ``chi2`` keeps only the reconstruction term: a proper likelihood ratio of the same
pixels. ``chi2+logp`` adds the latent densities (the approximate log evidence ratio), ``logp`` uses
them alone; they live in two different latent spaces, and a faint star's latents are atypical
for a star model trained mostly on brighter stars, so adding them costs the faint stars that
contaminate a galaxy sample (measured in docs/catalog.md). The threshold 0 means equal prior
odds and needs no truth; rule and threshold go into the catalogue's metadata.
"""

from __future__ import annotations

import numpy as np

__all__ = ["StarGalaxyRule", "RULES"]

RULES = {
    "chi2": "0.5 * NPIX * (CHI2_GALAXY - CHI2_STAR) > threshold, "
            "NPIX = min valid pixels of the two fits",
    "logp": "LOGP_STAR - LOGP_GALAXY > threshold",
    "chi2+logp": "0.5 * NPIX * (CHI2_GALAXY - CHI2_STAR) + LOGP_STAR - LOGP_GALAXY > threshold",
}


class StarGalaxyRule:
    """Classify objects as stars when the star/galaxy log likelihood ratio exceeds a threshold.

    Arguments:
        rule: ``chi2`` (reconstruction likelihood ratio), ``logp`` (latent densities) or
            ``chi2+logp`` (both); see :data:`RULES`.
        threshold: log-ratio above which an object is a star; 0 means equal prior odds.

    Example:
        >>> rule = StarGalaxyRule("chi2")
        >>> rule.predict(chi2_galaxy=np.array([3.0, 1.0]), chi2_star=np.array([1.0, 1.2]),
        ...              npix_galaxy=np.array([100, 100]), npix_star=np.array([100, 90])).tolist()
        [True, False]
    """

    def __init__(self, rule: str = "chi2", threshold: float = 0.0):
        if rule not in RULES:
            raise ValueError(f"unknown star/galaxy rule {rule!r}; choose one of {', '.join(RULES)}")
        self.rule = rule
        self.threshold = float(threshold)

    def log_ratio(self, chi2_galaxy, chi2_star, npix_galaxy=None, npix_star=None,
                  logp_galaxy=None, logp_star=None) -> np.ndarray:
        """ln p(data | star) - ln p(data | galaxy) under the chosen rule; NaN where unknown."""
        terms = []
        if self.rule in ("chi2", "chi2+logp"):
            npix = np.minimum(np.asarray(npix_galaxy, float), np.asarray(npix_star, float))
            delta = np.asarray(chi2_galaxy, float) - np.asarray(chi2_star, float)
            terms.append(0.5 * npix * delta)
        if self.rule in ("logp", "chi2+logp"):
            terms.append(np.asarray(logp_star, float) - np.asarray(logp_galaxy, float))
        return np.sum(terms, axis=0)

    def predict(self, **scores) -> np.ndarray:
        """True for stars; an object whose ratio is unknown (a flagged fit) is not called a star."""
        ratio = self.log_ratio(**scores)
        return np.isfinite(ratio) & (ratio > self.threshold)

    def metadata(self) -> dict:
        """What the catalogue records so that a reader can redo or change the classification."""
        return {"STARRULE": self.rule, "STARTHR": self.threshold, "STARDESC": RULES[self.rule]}
