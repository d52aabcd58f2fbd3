"""Which pixels carry no trustworthy information: instrument flags, ivar <= 0, sky lines.

Sky-line residuals sit at fixed *observed* wavelengths, so one (P,) mask serves every object on
a grid. The line list shipped with the package (``specsift/data/sky-lines.txt``, from spender,
MIT) gives wavelengths in nm in vacuum: its [O I] line is at 557.8887 nm, the vacuum value of the 5577.34 A air line, and the
Na D lines at 589.158/589.756 nm are vacuum too. Survey grids here are vacuum, so no conversion.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..errors import SpecsiftInputError
from ..spectra import Spectra
from .config import MaskConfig

__all__ = ["load_sky_lines", "sky_line_mask", "bad_pixels", "DEFAULT_SKY_LINES"]

DEFAULT_SKY_LINES = files("specsift") / "data" / "sky-lines.txt"


@lru_cache(maxsize=4)
def load_sky_lines(path: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(vacuum wavelength in Angstrom, intensity) of every line in the list, file order;
    ``path`` empty: the list shipped with the package.

    Example:
        >>> wave, intensity = load_sky_lines()
        >>> round(float(wave[0]), 2), float(intensity[0])   # [O I] 5577 A (air), in vacuum
        (5578.89, 100.0)
    """
    path = Path(path) if path else Path(str(DEFAULT_SKY_LINES))
    wave, intensity = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SpecsiftInputError(f"cannot read the sky-line list: {exc.strerror}", path) from None
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            wave.append(float(fields[0]) * 10.0)  # nm -> Angstrom
            intensity.append(float(fields[1]))
        except (ValueError, IndexError):
            raise SpecsiftInputError("expected 'wavelength_nm intensity ...'", path,
                                     row=number) from None
    if not wave:
        raise SpecsiftInputError("the sky-line list holds no lines", path)
    return np.array(wave), np.array(intensity)


def sky_line_mask(wave: np.ndarray, config: MaskConfig) -> np.ndarray:
    """(P,) bool: pixels within ``sky_half_width`` of the ``n_sky_lines`` strongest lines on ``wave``.

    Only lines that fall on the grid compete, so "the 100 strongest" means the 100 strongest
    this instrument sees (DESI: 3600-9824 A), not infrared lines it never records.
    """
    wave = np.asarray(wave, dtype=np.float64)
    mask = np.zeros(wave.shape, dtype=bool)
    if config.n_sky_lines == 0 or wave.size == 0:
        return mask
    lines, intensity = load_sky_lines(config.sky_lines)
    hw = config.sky_half_width
    on_grid = (lines >= wave.min() - hw) & (lines <= wave.max() + hw)
    lines, intensity = lines[on_grid], intensity[on_grid]
    strongest = lines[np.argsort(-intensity, kind="stable")[: config.n_sky_lines]]
    # grid is sorted: each line masks one contiguous index range
    lo = np.searchsorted(wave, strongest - hw, side="left")
    hi = np.searchsorted(wave, strongest + hw, side="right")
    for a, b in zip(lo, hi):
        mask[a:b] = True
    return mask


def bad_pixels(spectra: Spectra, sky: np.ndarray) -> np.ndarray:
    """(N, P) bool: instrument mask | ivar <= 0 | non-finite flux or ivar | sky-line pixels."""
    with np.errstate(invalid="ignore"):
        bad = spectra.mask | ~(spectra.ivar > 0) | ~np.isfinite(spectra.flux)
    bad |= ~np.isfinite(spectra.ivar)
    bad |= sky[None, :]
    return bad
