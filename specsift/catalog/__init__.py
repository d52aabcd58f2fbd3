"""The outlier catalogue: every object scored by a galaxy and a star pipeline, ranked, classified.

``scoring`` turns spectra into per-object scores, ``classify`` decides star or galaxy,
``distributed`` runs scoring in resumable chunks over Dask or accelerate workers and ``writer``
reads and writes the catalogue files (parquet or FITS).
"""

from .classify import RULES, StarGalaxyRule
from .distributed import SCHEDULERS, ScoreJob, score_catalog
from .writer import read_catalog, write_catalog

__all__ = ["RULES", "SCHEDULERS", "ScoreJob", "StarGalaxyRule", "read_catalog", "score_catalog",
           "write_catalog"]
