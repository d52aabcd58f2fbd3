"""An instrument is data, not a subclass per survey: a wavelength grid, a mask and an optional LSF.

Every survey (DESI, SDSS, LAMOST, APOGEE) differs only in these arrays, so the autoencoder takes an
:class:`Instrument` value; adding a survey never means adding a class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Instrument", "rest_frame_grid"]


@dataclass(frozen=True)
class Instrument:
    """The observed-frame pixels of one spectrograph.

    Arguments:
        wave: (P,) observed vacuum wavelength in Angstrom, increasing.
        mask: (P,) bool, True for pixels that never carry information (given zero weight);
            ``None`` means no fixed mask.
        lsf: odd-length 1-D kernel (in rest-frame pixels) the rest-frame model is convolved
            with before it is redshifted; ``None`` when the data are already at the model's
            resolution (the decoder then learns the convolved spectrum directly).
        name: survey name, for messages and the model config.

    Example:
        >>> inst = Instrument(np.linspace(3600.0, 9824.0, 7781), name="desi")
        >>> grid = inst.rest_grid(z_min=0.0, z_max=0.6, step=1.0)
        >>> round(float(grid[0])), round(float(grid[-1]))
        (2250, 9824)
    """

    wave: np.ndarray
    mask: np.ndarray | None = None
    lsf: np.ndarray | None = None
    name: str = ""

    def __post_init__(self):
        wave = np.asarray(self.wave, dtype=np.float64)
        if wave.ndim != 1 or len(wave) < 2 or not np.all(np.diff(wave) > 0):
            raise ValueError("instrument wavelength grid must be 1-D and strictly increasing")
        object.__setattr__(self, "wave", wave)
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.shape != wave.shape:
                raise ValueError(f"instrument mask has shape {mask.shape}, grid has {wave.shape}")
            object.__setattr__(self, "mask", mask)
        if self.lsf is not None:
            lsf = np.asarray(self.lsf, dtype=np.float64)
            if lsf.ndim != 1 or len(lsf) % 2 == 0 or lsf.sum() <= 0:
                raise ValueError("LSF kernel must be 1-D, of odd length and positive sum")
            object.__setattr__(self, "lsf", lsf / lsf.sum())

    def rest_grid(self, z_min: float, z_max: float, step: float) -> np.ndarray:
        """A linear rest-frame grid covering the observed range for every z in [z_min, z_max]."""
        return rest_frame_grid(self.wave[0], self.wave[-1], z_min, z_max, step)


def rest_frame_grid(wave_min: float, wave_max: float, z_min: float, z_max: float,
                    step: float) -> np.ndarray:
    """Rest grid from ``wave_min/(1+z_max)`` to ``wave_max/(1+z_min)`` in steps of about ``step``.

    Why: the decoder must predict every rest wavelength that any object in the redshift range
    puts on the detector, so the grid is set by the bluest pixel at the highest redshift and the
    reddest pixel at the lowest (negative for blue-shifted stars) redshift.
    """
    if not z_max > z_min > -1:
        raise ValueError(f"need -1 < z_min < z_max, got z_min={z_min}, z_max={z_max}")
    lo, hi = wave_min / (1 + z_max), wave_max / (1 + z_min)
    n = int(np.ceil((hi - lo) / step)) + 1
    return np.linspace(lo, hi, n)
