"""Per-object data checks: objects whose data are unusable are rejected, with the reason.

Readers pass flux and ivar through untouched, so corrupt values arrive here. A NaN or infinite
flux on a pixel that claims information (ivar > 0), a negative or non-finite ivar, or a spectrum
with no usable pixel means the object cannot be trusted as a whole: it is rejected (listed in the
rejects table with file, row and id), never silently repaired. Non-finite flux on pixels whose
ivar is already 0 claims nothing and is simply masked. Non-targets (sky and empty fibres, which
readers flag with ``IS_TARGET``) are rejected here too.
"""

from __future__ import annotations

import numpy as np

from ..spectra import Spectra

__all__ = ["check_quality"]


def check_quality(spectra: Spectra, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find unusable objects.

    Arguments:
        spectra: the objects as read.
        bad: (N, P) final pixel mask (see :func:`specsift.preprocess.masks.bad_pixels`).

    Returns:
        ``(reason, detail)``: (N,) strings, ``''`` for usable objects, else the first problem
        found and its size (e.g. ``'12 of 7781 pixels'``).
    """
    n, p = spectra.flux.shape
    reason = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)

    def flag(problem: str, hit: np.ndarray, text) -> None:
        new = hit & (reason == "")
        reason[new] = f"bad data: {problem}"
        detail[new] = np.broadcast_to(np.asarray(text, dtype=object), (n,))[new]

    if "IS_TARGET" in spectra.meta.colnames:
        flag("not a target (sky or empty fibre)",
             ~np.asarray(spectra.meta["IS_TARGET"], dtype=bool), "IS_TARGET is False")
    with np.errstate(invalid="ignore"):
        pixel_checks = [("non-finite ivar", ~np.isfinite(spectra.ivar)),
                        ("negative ivar", spectra.ivar < 0),
                        ("non-finite flux where ivar > 0",
                         ~np.isfinite(spectra.flux) & (spectra.ivar > 0))]
    for problem, pixels in pixel_checks:
        counts = pixels.sum(axis=1)
        flag(problem, counts > 0, np.array([f"{k} of {p} pixels" for k in counts], dtype=object))
    flag("all pixels masked", bad.all(axis=1), f"{p} of {p} pixels masked")
    return reason, detail
