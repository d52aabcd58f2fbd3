"""Which catalogue rows belong to an ingest sample (``bgs``, ``mws``, ...).

A catalogue is usually scored from the ``all`` store, so its SAMPLE column says ``all``. The
sample of an object is then what its catalogue columns say under the sample's cuts (for DESI
``bgs``: a BGS target, SPECTYPE GALAXY, a secure redshift in 0 <= z <= 0.8), and the cuts are
those the store was ingested with (its manifest), or the survey defaults when the store is not
at hand. So ``specsift gallery --sample bgs`` shows the outliers of the BGS galaxy sample
exactly as ``specsift ingest --sample bgs`` would have selected it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["sample_config", "in_sample"]


def sample_config(metadata: dict, store: str | Path | None = None):
    """The :class:`~specsift.preprocess.PreprocessConfig` the catalogue's store was ingested
    with (``store``, else the STORE recorded by ``specsift score``); the defaults of its SURVEY
    when no store manifest can be read."""
    from ..errors import SpecsiftInputError
    from ..preprocess import PreprocessConfig, default_config
    from ..store.format import read_manifest

    path = store or metadata.get("STORE")
    if path:
        try:
            manifest = read_manifest(path)
        except (SpecsiftInputError, OSError):
            manifest = {}
        if "config" in manifest:
            return PreprocessConfig.from_dict(manifest["config"])
    return default_config(str(metadata.get("SURVEY", "")))


def in_sample(table, sample: str, config, path=None) -> np.ndarray:
    """Boolean mask of the rows of ``table`` that pass every cut of ``sample`` in ``config``.

    Example:
        >>> from astropy.table import Table
        >>> from specsift.preprocess import default_config
        >>> rows = Table({"DESI_TARGET": [1 << 60, 1 << 61], "SPECTYPE": ["GALAXY", "STAR"],
        ...               "ZWARN": [0, 0], "DELTACHI2": [100.0, 100.0], "Z": [0.1, 0.0]})
        >>> in_sample(rows, "bgs", default_config("desi")).tolist()
        [True, False]
    """
    from ..preprocess.selection import apply_cuts

    reason, _ = apply_cuts(table, config.cuts(sample), path)
    return reason == ""
