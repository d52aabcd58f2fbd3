"""Survey readers: one module per survey, each turning files into a :class:`~specsift.Spectra`.

:data:`READERS` (in :mod:`specsift.io.registry`) declares every survey's module, stream function
and file patterns; :func:`read` and ``specsift ingest`` go through it.
"""

from __future__ import annotations

from .paths import expand_paths
from .registry import READERS, SURVEYS, Reader, get_reader

__all__ = ["read", "expand_paths", "READERS", "SURVEYS", "Reader", "get_reader"]


def read(paths, survey: str = "desi", **options):
    """Read survey files into one :class:`~specsift.Spectra`; see each survey module for options."""
    return get_reader(survey).read(paths, **options)
