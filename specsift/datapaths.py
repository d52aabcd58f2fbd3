"""Where the shared survey data and mock generators live (never copied into the package)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "bench_dir"]

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The shared data folder: ``$SPECSIFT_DATA``, else ``../shared/data`` beside the project."""
    env = os.environ.get("SPECSIFT_DATA")
    return Path(env) if env else _PROJECT_ROOT.parent / "shared" / "data"


def bench_dir() -> Path:
    """The mock-survey generators: ``$SPECSIFT_BENCH``, else ``bench`` beside the data folder."""
    env = os.environ.get("SPECSIFT_BENCH")
    return Path(env) if env else data_dir().parent / "bench"
