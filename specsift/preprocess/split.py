"""Deterministic train/validation/test split from a hash of each object's id.

The split of an object depends on its id alone (SHA-256 of ``salt + str(id)``), never on the
order of files, the number of workers or Python's per-process ``hash()`` seed. So a re-ingest, a
resumed ingest or an ingest of more files puts every object back in the same split.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["SPLITS", "hash_uniform", "assign_split"]

SPLITS = ("train", "validation", "test")


def hash_uniform(ids, salt: str = "") -> np.ndarray:
    """(N,) float64 in [0, 1): the first 8 bytes of SHA-256(salt + id) as a fraction."""
    out = np.empty(len(ids), dtype=np.float64)
    for i, object_id in enumerate(ids):
        text = object_id.decode() if isinstance(object_id, bytes) else str(object_id)
        digest = hashlib.sha256(f"{salt}{text.strip()}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def assign_split(ids, fractions=(0.7, 0.15, 0.15), salt: str = "") -> np.ndarray:
    """(N,) array of ``'train'``/``'validation'``/``'test'`` with the given expected fractions."""
    u = hash_uniform(ids, salt)
    edges = np.cumsum(fractions)[:-1]
    return np.asarray(SPLITS)[np.searchsorted(edges, u, side="right")]
