"""Data-parallel training through accelerate: two CPU processes started by torchrun, one model."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specsift.models.modeldir import ModelDir
from specsift.store import ingest

pytest.importorskip("accelerate")


def test_two_process_training_writes_one_loadable_model(mock_desi_dir, tmp_path):
    ingest([mock_desi_dir / "coadd-mock-0000.fits"], tmp_path / "store", survey="desi",
           sample="bgs", chunk_rows=64)
    launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert launcher, "torchrun is installed with torch"
    run = subprocess.run(
        [launcher, "--standalone", "--nproc_per_node", "2", "-m", "specsift.cli.main", "train-ae",
         str(tmp_path / "store"), "--out", str(tmp_path / "model"), "--epochs", "2",
         "--batch-size", "32", "--decoder-epochs", "0", "--distributed", "--threads", "1"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 process(es)" in run.stderr
    assert run.stderr.count("training finished") == 1   # rank 1 logs warnings only
    model = ModelDir(tmp_path / "model").load_autoencoder()
    assert model.n_latent == 6
