"""Undo Milky-Way dust: the Cardelli, Clayton & Mathis (1989) law at the survey's E(B-V).

Why at ingest: Galactic extinction acts in the observed frame, so a rest-frame model (the
autoencoder's decoder) can only mimic it with latents that should describe the galaxy. DESI
fibermaps carry the SFD E(B-V) of every target (``EBV``); dividing the extinction out leaves
spectra whose only frame-dependent effect is the redshift. The inverse variance is scaled by the
same factor squared, so the S/N of every pixel is unchanged.

References:
    | Cardelli, Clayton & Mathis 1989, ApJ 345, 245 (eqs. 2-3)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ccm89_a_over_ebv", "deredden"]

# CCM89 eq. 3, optical/near-infrared (1.1 <= x <= 3.3 per micron), in powers of y = x - 1.82
_A_OPTICAL = (1.0, 0.17699, -0.50447, -0.02427, 0.72085, 0.01979, -0.77530, 0.32999)
_B_OPTICAL = (0.0, 1.41338, 2.28305, 1.07233, -5.38434, -0.62251, 5.30260, -2.09002)


def ccm89_a_over_ebv(wave: np.ndarray, r_v: float = 3.1) -> np.ndarray:
    """A_lambda / E(B-V) at vacuum-or-air wavelengths ``wave`` (Angstrom, 3030-33000 A).

    Example:
        >>> round(float(ccm89_a_over_ebv(np.array([5495.0]))[0]), 2)   # A_V / E(B-V) = R_V
        3.1
    """
    x = 1e4 / np.asarray(wave, dtype=np.float64)
    y = x - 1.82
    a_opt = np.polynomial.polynomial.polyval(y, _A_OPTICAL)
    b_opt = np.polynomial.polynomial.polyval(y, _B_OPTICAL)
    a = np.where(x >= 1.1, a_opt, 0.574 * x**1.61)   # eq. 2, infrared below 1.1 per micron
    b = np.where(x >= 1.1, b_opt, -0.527 * x**1.61)
    return r_v * a + b


def deredden(wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, ebv: np.ndarray,
             r_v: float = 3.1) -> tuple[np.ndarray, np.ndarray]:
    """``flux * 10**(0.4 A)`` and ``ivar / 10**(0.8 A)`` for (N,) E(B-V) values (float32 out)."""
    a = np.asarray(ebv, dtype=np.float64)[:, None] * ccm89_a_over_ebv(wave, r_v)[None, :]
    gain = 10.0 ** (0.4 * a)
    return ((flux * gain).astype(np.float32), (ivar / gain**2).astype(np.float32))
