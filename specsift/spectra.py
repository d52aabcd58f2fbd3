"""The one container every survey reader returns and every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table, vstack

__all__ = ["Spectra"]


@dataclass
class Spectra:
    """Spectra of many objects on one shared wavelength grid.

    Arguments:
        wave: (P,) vacuum wavelength in Angstrom, increasing.
        flux: (N, P) flux density, float32.
        ivar: (N, P) inverse variance of ``flux``; 0 where a pixel carries no information.
        mask: (N, P) bool, True where a pixel is bad (instrument mask, ivar <= 0, sky lines...).
        z: (N,) redshift where known, NaN otherwise.
        ids: (N,) object ids as the survey names them (TARGETID, APOGEE_ID, ...).
        meta: per-object metadata, one row per object, in the same order.
        survey: the survey the spectra come from (``desi``, ``sdss``, ``apogee``, ``lamost``).

    Example:
        >>> import numpy as np
        >>> s = Spectra(wave=np.arange(3.0), flux=np.ones((2, 3)), ivar=np.ones((2, 3)),
        ...             mask=np.zeros((2, 3), bool), z=np.zeros(2), ids=np.array([7, 8]))
        >>> len(s), s[1:].ids.tolist()
        (2, [8])
    """

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    z: np.ndarray
    ids: np.ndarray
    meta: Table = field(default_factory=Table)
    survey: str = ""

    def __post_init__(self):
        self.wave = np.asarray(self.wave, dtype=np.float64)
        self.flux = np.atleast_2d(np.asarray(self.flux, dtype=np.float32))
        self.ivar = np.atleast_2d(np.asarray(self.ivar, dtype=np.float32))
        self.mask = np.atleast_2d(np.asarray(self.mask, dtype=bool))
        self.z = np.asarray(self.z, dtype=np.float64).reshape(-1)
        self.ids = np.asarray(self.ids).reshape(-1)
        n, p = self.flux.shape
        for name in ("ivar", "mask"):
            if getattr(self, name).shape != (n, p):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, flux has {(n, p)}")
        if self.wave.shape != (p,):
            raise ValueError(f"wave has shape {self.wave.shape}, expected ({p},) to match flux")
        for name in ("z", "ids"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} spectra")
        if len(self.meta) == 0 and n:
            self.meta = Table()
        elif len(self.meta) != n:
            raise ValueError(f"meta has {len(self.meta)} rows for {n} spectra")

    def __len__(self) -> int:
        return self.flux.shape[0]

    def __getitem__(self, index) -> "Spectra":
        """Select objects (slice, integer array or boolean mask); the grid is shared."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        meta = self.meta[index] if len(self.meta.colnames) else Table()
        return Spectra(self.wave, self.flux[index], self.ivar[index], self.mask[index],
                       self.z[index], self.ids[index], meta, self.survey)

    @property
    def good(self) -> np.ndarray:
        """(N, P) bool: pixels that are usable (not masked and with positive ivar)."""
        return ~self.mask & (self.ivar > 0)

    @classmethod
    def concatenate(cls, parts: list["Spectra"]) -> "Spectra":
        """Stack containers that share one wavelength grid (e.g. one per input file)."""
        if not parts:
            raise ValueError("no spectra to concatenate")
        if len(parts) == 1:  # one file read: no copy of the (N, P) arrays
            return parts[0]
        wave = parts[0].wave
        for part in parts[1:]:
            if part.wave.shape != wave.shape or not np.allclose(part.wave, wave):
                raise ValueError("cannot concatenate spectra on different wavelength grids")
        metas = [p.meta for p in parts if len(p)]
        meta = vstack(metas, metadata_conflicts="silent") if metas and metas[0].colnames else Table()
        return cls(wave,
                   np.concatenate([p.flux for p in parts]),
                   np.concatenate([p.ivar for p in parts]),
                   np.concatenate([p.mask for p in parts]),
                   np.concatenate([p.z for p in parts]),
                   np.concatenate([p.ids for p in parts]),
                   meta, parts[0].survey)
