"""Survey readers: one module per survey, each turning files into a :class:`~specsift.Spectra`."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import SpecsiftInputError

__all__ = ["read", "expand_paths", "SURVEYS"]

SURVEYS = ("desi", "sdss", "apogee", "lamost")


def expand_paths(paths, patterns: tuple[str, ...] = ("*.fits", "*.fits.gz")) -> list[Path]:
    """Turn files, folders and globs into a sorted list of files; a folder yields ``patterns``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for item in paths:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise SpecsiftInputError("no file matches this pattern", text)
            found.extend(Path(m) for m in matches)
        elif Path(text).is_dir():
            matches = sorted({m for pat in patterns for m in Path(text).glob(pat)})
            if not matches:
                raise SpecsiftInputError(f"folder holds no {' or '.join(patterns)} files", text)
            found.extend(matches)
        elif Path(text).exists():
            found.append(Path(text))
        else:
            raise SpecsiftInputError("no such file or folder", text)
    return found


def read(paths, survey: str = "desi", **options):
    """Read survey files into one :class:`~specsift.Spectra`; see each survey module for options."""
    survey = survey.lower()
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; choose one of {', '.join(SURVEYS)}")
    from importlib import import_module

    module = import_module(f"{__name__}.{survey}")
    return module.read(paths, **options)
