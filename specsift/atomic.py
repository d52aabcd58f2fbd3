"""Write files so that a killed run never leaves a half-written output behind."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "sha256_file", "check_writable"]


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes[-1:]),
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; outputs are shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in blocks so large model files need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, before hours of work, if ``path`` (a file or a folder to be written) cannot be
    written: its folder is created and a file is made and removed there. Raises
    :class:`~specsift.errors.SpecsiftInputError` naming ``path`` and the reason.

    Example:
        >>> import tempfile
        >>> blocker = Path(tempfile.mkdtemp()) / "a-file"
        >>> _ = blocker.write_text("")
        >>> check_writable(blocker / "catalog.parquet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        specsift.errors.SpecsiftInputError: .../a-file/catalog.parquet: cannot write here: .../a-file is a file, not a folder
    """
    from .errors import SpecsiftInputError

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SpecsiftInputError(f"cannot write here: {ancestor} is a file, not a folder", path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".specsift-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise SpecsiftInputError(f"cannot write here: {error.strerror or error}", path) from None
