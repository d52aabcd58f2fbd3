"""One writer per store: an advisory lock held for the whole of an ingest run.

Two ``ingest`` runs into the same folder would each keep their own copy of the manifest and the
last to write it would silently drop the other's files; each would also delete the other's
temporary files at start-up. The lock is an ``flock`` on ``STORE/.lock``: the kernel releases
it when the process ends, so a ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import SpecsiftInputError

__all__ = ["LOCK_NAME", "store_lock"]

LOCK_NAME = ".lock"


@contextmanager
def store_lock(root: str | os.PathLike, wait: float = 0.0):
    """Hold the store's write lock inside the block; another holder makes it wait up to ``wait``
    seconds, then raise :class:`~specsift.errors.SpecsiftInputError` naming that process.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> with store_lock(root):
        ...     with store_lock(root):
        ...         pass
        Traceback (most recent call last):
        ...
        specsift.errors.SpecsiftInputError: ...: another specsift ingest (pid ...) is writing this store; ...
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK_NAME, "a+")
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    owner = handle.read().strip() or "unknown"
                    raise SpecsiftInputError(
                        f"another specsift ingest (pid {owner}) is writing this store; wait for "
                        f"it to finish, then rerun (nothing was changed)", root) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
