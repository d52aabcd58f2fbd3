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
    """The shared real-data folder (``$SPECSIFT_DATA`` or ``../shared/data``), symlinks resolved
    as the store resolves them when it records file names."""
    path = (data_dir() / "real").resolve()
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


@pytest.fixture(scope="session")
def scoring_setup(mock_desi_dir, tmp_path_factory):
    """A 350-object store (200 galaxies + 150 stars) with tiny galaxy and star models + flows.

    The models go through the real trainers (one epoch, a tiny architecture registered only for
    this fixture), so the catalogue tests exercise real model directories in ~20 s.
    """
    from types import SimpleNamespace

    from specsift.models import configs
    from specsift.models.flow import LatentFlow, collect_latents
    from specsift.models.modeldir import ModelDir
    from specsift.models.training import AutoencoderTrainer
    from specsift.store import SpectraStore, ingest

    root = tmp_path_factory.mktemp("scoring")
    ingest([mock_desi_dir / "coadd-mock-0000.fits", mock_desi_dir / "coadd-mock-0002.fits"],
           root / "store", survey="desi", sample="all", chunk_rows=64)
    store = SpectraStore(root / "store")
    tiny = {"channels": [4, 8, 8], "kernels": [5, 5, 5], "encoder_hidden": [16],
            "decoder_hidden": [32], "rest_step": 4.0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(configs.SIZES, "tiny", tiny)
        for name, z_range in (("galaxy", None), ("star", (-0.01, 0.01))):
            model_dir = ModelDir(root / name)
            AutoencoderTrainer(size="tiny", epochs=1, decoder_epochs=0, batch_size=64,
                               z_range=z_range, seed=0, device="cpu").fit(store, model_dir)
            autoencoder = model_dir.load_autoencoder()
            LatentFlow(transforms=2, hidden=(16,), max_epochs=5, patience=2, device="cpu").fit(
                collect_latents(autoencoder, store, "train", 128, "cpu"),
                collect_latents(autoencoder, store, "validation", 128, "cpu")).save(model_dir)
    return SimpleNamespace(root=root, store=root / "store", galaxy=root / "galaxy",
                           star=root / "star")


@pytest.fixture(scope="session")
def scored(scoring_setup, tmp_path_factory):
    """``specsift train-flow`` then ``score`` on :func:`scoring_setup`: the models (copied, so
    train-flow can rewrite them) and a FITS catalogue, shared by the catalogue, review and
    browser tests."""
    import shutil

    from specsift.cli.main import main

    root = tmp_path_factory.mktemp("cli_catalog")
    for name in ("galaxy", "star"):
        shutil.copytree(getattr(scoring_setup, name), root / name)
    assert main(["-q", "train-flow", str(scoring_setup.store), "--model", str(root / "galaxy"),
                 "--transforms", "2", "--hidden", "16", "--max-epochs", "4",
                 "--device", "cpu"]) == 0
    catalog = root / "catalog.fits"
    assert main(["-q", "score", str(scoring_setup.store), "--galaxy-model", str(root / "galaxy"),
                 "--star-model", str(root / "star"), "--out", str(catalog), "--device", "cpu",
                 "--batch-size", "64", "--star-rule", "logp"]) == 0
    return root, catalog
