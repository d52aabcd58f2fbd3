"""The one registry of survey readers: which module reads a survey, how it streams, what files.

Every caller (``specsift.read``, ``ingest``, the CLI's ``--survey`` choices) asks this table
rather than importing ``specsift.io.<survey>`` and probing it, as specutils registers its
loaders. Modules are imported when first used, so listing the surveys stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Callable, Iterator

from ..errors import SpecsiftInputError
from .paths import FITS_PATTERNS, expand_paths

__all__ = ["Reader", "READERS", "SURVEYS", "get_reader"]


@dataclass(frozen=True)
class Reader:
    """One survey's reader.

    Arguments:
        survey: the name users pass (``--survey``).
        module: the module holding ``read`` and the stream function.
        stream: name of the function yielding :class:`~specsift.Spectra` in bounded batches.
        patterns: the files a folder yields for this survey.
    """

    survey: str
    module: str
    stream: str
    patterns: tuple[str, ...] = FITS_PATTERNS

    @property
    def read(self) -> Callable:
        """The module's ``read(paths, **options)`` (all files into one Spectra)."""
        return import_module(self.module).read

    def iter_spectra(self, paths, **options) -> Iterator:
        """Stream ``paths`` in batches (per file, per chunk of files or per rows of a bulk file)."""
        return getattr(import_module(self.module), self.stream)(paths, **options)

    def files(self, paths) -> list[Path]:
        """The files ``paths`` (files, folders, globs) name for this survey."""
        return expand_paths(paths, self.patterns)


READERS: dict[str, Reader] = {reader.survey: reader for reader in (
    # a DESI folder yields only coadds: redrock, per-exposure spectra and stacks sit beside them
    Reader("desi", "specsift.io.desi", "iter_read", ("*coadd*.fits", "*coadd*.fits.gz")),
    Reader("sdss", "specsift.io.sdss", "iter_read"),
    Reader("apogee", "specsift.io.apogee", "iter_batches"),
    Reader("lamost", "specsift.io.lamost", "iter_read"),
)}
SURVEYS = tuple(READERS)


def get_reader(survey: str) -> Reader:
    """The registered reader of ``survey`` (case-insensitive); an unknown name is an input error.

    Example:
        >>> get_reader("DESI").patterns
        ('*coadd*.fits', '*coadd*.fits.gz')
    """
    try:
        return READERS[str(survey).lower()]
    except KeyError:
        raise SpecsiftInputError(f"unknown survey {survey!r}; choose one of "
                                 f"{', '.join(SURVEYS)}") from None
