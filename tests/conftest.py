"""Shared fixtures: the real data folder and small mock surveys, generated once per session."""

from __future__ import annotations

import os

import pytest
import torch

from specsift.datapaths import data_dir
from specsift.mocks import mock_apogee, mock_desi

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def real_data():
    """The shared real-data folder (``$SPECSIFT_DATA`` or ``../shared/data``)."""
    path = data_dir() / "real"
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} is missing; set SPECSIFT_DATA")
    return path


@pytest.fixture(scope="session")
def mock_desi_dir(tmp_path_factory):
    """A small mock DESI bright-time survey: 400 galaxies (5% anomalies) and 150 stars."""
    out = tmp_path_factory.mktemp("mock_desi")
    mock_desi(out, n_galaxies=400, n_stars=150, outlier_frac=0.05, seed=3, per_file=200,
              verbose=False)
    return out


@pytest.fixture(scope="session")
def mock_apogee_dir(tmp_path_factory):
    """A small mock APOGEE set: 400 field giants and 6 open clusters."""
    out = tmp_path_factory.mktemp("mock_apogee")
    mock_apogee(out, n_field=400, n_clusters=6, seed=3, per_star_files=5, verbose=False)
    return out
