"""What a store holds, as one JSON-able dict: counts, splits, classes, grid, masks, S/N, rejects.

``specsift info`` prints it; tests and benchmarks read the same numbers.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..preprocess.split import SPLITS
from .reader import SpectraStore
from .tables import read_table

__all__ = ["summarize"]

_PERCENTILES = (5, 25, 50, 75, 95)


def _distribution(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0}
    out = {"n": int(values.size), "mean": float(values.mean())}
    out.update({f"p{q}": float(v) for q, v in zip(_PERCENTILES, np.percentile(values, _PERCENTILES))})
    return out


def summarize(store: SpectraStore) -> dict:
    """Counts per split and class, the grid, the masked fraction and S/N distributions, rejects.

    Keys: ``path, survey, sample, n_read, n_objects, n_rejected, splits, classes,
    classes_by_split, wave, masked_fraction, snr, rejects_by_reason, failed_files``.
    """
    class_column = "SPECTYPE" if "SPECTYPE" in store.meta.colnames else "SAMPLE"
    meta = store.meta
    n = len(meta)
    split = np.asarray(meta["SPLIT"]) if n else np.empty(0, dtype=str)
    classes = np.char.strip(np.asarray(meta[class_column], dtype=str)) if n else split
    wave = store.wave
    reasons = read_table(store.path / "rejects.parquet", ["REASON"])
    return {
        "path": str(store.path),
        "survey": store.survey,
        "sample": store.sample,
        "n_read": int(store.manifest["n_read"]),
        "n_objects": int(n),
        "n_rejected": int(store.manifest["n_rejected"]),
        "splits": {s: int(np.sum(split == s)) for s in SPLITS},
        "class_column": class_column,
        "classes": dict(sorted(Counter(classes.tolist()).items())),
        "classes_by_split": {s: dict(sorted(Counter(classes[split == s].tolist()).items()))
                             for s in SPLITS},
        "wave": {"n_pixels": int(wave.size), "min": float(wave.min()), "max": float(wave.max()),
                 "median_step": float(np.median(np.diff(wave))) if wave.size > 1 else 0.0},
        "masked_fraction": _distribution(meta["MASKED_FRACTION"] if n else []),
        "snr": _distribution(meta["SNR"] if n else []),
        "rejects_by_reason": dict(Counter(np.asarray(reasons["REASON"], dtype=str).tolist())
                                  .most_common()) if len(reasons) else {},
        "failed_files": {v["path"]: v["problem"] for v in store.manifest.get("failed", {}).values()},
    }
