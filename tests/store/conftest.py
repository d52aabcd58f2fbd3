"""Stores built once per session from the shared small mock DESI survey."""

from __future__ import annotations

import shutil

import pytest

from specsift.store import SpectraStore, ingest


@pytest.fixture(scope="session")
def all_store(mock_desi_dir, tmp_path_factory):
    """The whole mock (galaxies and stars, 3 files) in small chunks, so shuffling has work."""
    out = tmp_path_factory.mktemp("stores") / "all"
    ingest(mock_desi_dir, out, survey="desi", sample="all", chunk_rows=64)
    return SpectraStore(out)


def copy_mock(mock_desi_dir, dest, files=(0, 1, 2)):
    """Copy coadd/redrock pairs of the mock into ``dest`` (to edit or add to them)."""
    dest.mkdir(parents=True, exist_ok=True)
    for i in files:
        for kind in ("coadd", "redrock"):
            shutil.copy(mock_desi_dir / f"{kind}-mock-{i:04d}.fits", dest)
    return dest
