"""specsift: find the unusual objects and the chemical siblings in spectroscopic surveys.

Data flows one way: ``io`` (survey files to :class:`Spectra`) -> ``preprocess`` and ``store``
(cuts, masks, normalisation, on-disk batches) -> ``models`` (autoencoder, flow) and ``metric``
(RSCA) -> ``catalog`` -> ``plots``. The ``cli`` package only wires these together.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import SpecsiftInputError
from .spectra import Spectra

try:
    __version__ = version("specsift")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["Spectra", "SpecsiftInputError", "read", "__version__"]


def read(paths, survey: str = "desi", **options) -> Spectra:
    """Read survey files (paths, folders or globs) into one :class:`Spectra` container."""
    from .io import read as _read

    return _read(paths, survey=survey, **options)
