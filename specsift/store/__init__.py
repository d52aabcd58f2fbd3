"""The on-disk store of preprocessed spectra: written by ``specsift ingest``, read in batches.

:class:`SpectraStore` opens a store; :func:`ingest` builds one from survey files. The layout is
described in :mod:`specsift.store.format`.
"""

from .build import IngestReport, ingest
from .reader import SpectraStore

__all__ = ["SpectraStore", "ingest", "IngestReport"]
