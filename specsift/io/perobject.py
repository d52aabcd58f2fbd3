"""Shared loop for surveys that write one spectrum per file (SDSS/BOSS, LAMOST).

Such surveys put every file on one global log-lambda grid, so a chunk of files becomes one
:class:`~specsift.Spectra` by placing each spectrum at its pixel offset. Chunking bounds memory
however many files a survey has.
"""

from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from astropy.table import Table

from ..errors import SpecsiftInputError
from ..runtime import progress
from ..spectra import Spectra
from .paths import expand_paths
from .grids import Grid

__all__ = ["iter_files", "require_vacuum", "FILES_PER_CHUNK"]

FILES_PER_CHUNK = 2048

logger = logging.getLogger("specsift.io")
_warned_no_vacuum: set[str] = set()

ReadOne = Callable[[Path], tuple[tuple[int, np.ndarray, np.ndarray, np.ndarray], dict]]


def iter_files(paths, read_one: ReadOne, grid: Grid, survey: str,
               files_per_chunk: int = FILES_PER_CHUNK) -> Iterator[Spectra]:
    """Yield a Spectra per chunk of files; ``read_one(path)`` gives ``(offset, flux, ivar, bad)``
    and a meta dict holding at least ``ID`` and ``Z``."""
    files = iter(progress(expand_paths(paths), desc=f"{survey} spectra", unit="file"))
    while chunk := list(islice(files, files_per_chunk)):
        rows = [read_one(path) for path in chunk]
        flux, ivar, mask = grid.stack([r[0] for r in rows], chunk)
        meta = Table(rows=[r[1] for r in rows])
        yield Spectra(grid.wave, flux, ivar, mask, np.asarray(meta["Z"], np.float64),
                      np.asarray(meta["ID"]), meta, survey)


def require_vacuum(head, path, survey: str) -> None:
    """Refuse air wavelengths: converting them would move pixels off the vacuum log grid."""
    if "VACUUM" not in head:
        # the survey's data model says vacuum; say so once per survey rather than per file
        if survey not in _warned_no_vacuum:
            _warned_no_vacuum.add(survey)
            logger.warning("%s: no VACUUM keyword in the primary header; assuming vacuum "
                           "wavelengths, as %s writes them (further files without it are not "
                           "reported)", path, survey)
        return
    if head["VACUUM"] is False:
        raise SpecsiftInputError(f"{survey} wavelengths are in air (VACUUM = F); specsift reads "
                                 f"vacuum wavelengths only", path)
