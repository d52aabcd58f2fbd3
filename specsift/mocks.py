"""Access to the shared mock-survey generators (``../shared/bench``), used by demos and tests.

The generators are not part of specsift: they are loaded from the shared bench folder so that
development data, tests and benchmarks all come from one deterministic source.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .datapaths import bench_dir

__all__ = ["load_generator", "mock_desi", "mock_apogee"]


def load_generator(name: str):
    """Import ``<bench_dir>/<name>.py`` as a module (cached in ``sys.modules``)."""
    key = f"_specsift_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    path = bench_dir() / f"{name}.py"
    if not path.exists():
        raise FileNotFoundError(f"{path}: mock generator not found; set SPECSIFT_BENCH or "
                                f"SPECSIFT_DATA to the shared folder")
    folder = str(path.parent)
    if folder not in sys.path:  # the generators import their sibling modules
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def mock_desi(out: str | Path, **kwargs) -> dict:
    """Write a mock DESI survey (coadd/redrock files + truth.fits) into ``out``."""
    return load_generator("mock_desi").generate(str(out), **kwargs)


def mock_apogee(out: str | Path, **kwargs) -> dict:
    """Write a mock APOGEE/OCCAM set (allStar, members, spectra, truth.fits) into ``out``."""
    return load_generator("mock_apogee").generate(str(out), **kwargs)
