"""Files, folders and glob patterns turned into the sorted list of files a reader opens."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import SpecsiftInputError

__all__ = ["expand_paths", "FITS_PATTERNS"]

FITS_PATTERNS = ("*.fits", "*.fits.gz")


def expand_paths(paths, patterns: tuple[str, ...] = FITS_PATTERNS) -> list[Path]:
    """Turn files, folders and globs into a list of files; a folder yields ``patterns``, sorted.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.fits", "a.fits", "notes.txt"):
        ...     _ = (folder / name).write_text("")
        >>> [p.name for p in expand_paths(folder)]
        ['a.fits', 'b.fits']
    """
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
