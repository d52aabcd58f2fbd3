"""End to end through the CLI: ingest a tiny mock -> train-ae -> encode -> evaluate-ae (+ figure)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from specsift.cli.main import main
from specsift.mocks import mock_desi

TINY = ["--epochs", "2", "--phase1-fraction", "0.5", "--batch-size", "16", "--latents", "4",
        "--rest-step", "2.0", "--device", "cpu", "--seed", "1", "--decoder-epochs", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ae_cli")
    mock_desi(root / "mock", n_galaxies=60, n_stars=0, sample="bgs", seed=4, per_file=60,
              verbose=False)
    store, model = root / "store", root / "model"
    assert main(["ingest", str(root / "mock"), "--survey", "desi", "--sample", "bgs",
                 "--out", str(store)]) == 0
    assert main(["train-ae", str(store), "--out", str(model), *TINY]) == 0
    return root, store, model


def test_train_ae_writes_a_complete_model_dir(trained):
    _, _, model = trained
    config = json.loads((model / "config.json").read_text())
    assert config["latents"] == 4 and config["size"] == "small"
    assert config["architecture"]["rest_step"] == 2.0
    assert len(config["weights"]["autoencoder"]["sha256"]) == 64
    log = [json.loads(line) for line in (model / "training_log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["fidelity", "invariance"]
    assert (model / "autoencoder.safetensors").exists()


def test_encode_writes_one_row_per_object_with_latents_chi2_and_flags(trained):
    from specsift.store import SpectraStore

    root, store, model = trained
    out = root / "latents.parquet"
    assert main(["encode", str(store), "--model", str(model), "--out", str(out),
                 "--device", "cpu"]) == 0
    table = pq.read_table(out).to_pydict()
    meta = SpectraStore(store).meta
    assert table["ID"] == list(np.asarray(meta["ID"]))
    assert {"SPLIT", "Z", "NORM", "LATENTS", "CHI2", "N_GOOD", "FLAG"} <= set(table)
    latents = np.array(table["LATENTS"])
    assert latents.shape == (len(meta), 4) and np.isfinite(latents).all()
    ok = np.array(table["FLAG"]) == 0
    assert ok.mean() > 0.9 and np.all(np.array(table["CHI2"])[ok] > 0)


def test_evaluate_ae_reports_each_split_and_the_invariance_ratio(trained, capsys):
    root, store, model = trained
    png = root / "fig2.png"
    assert main(["evaluate-ae", str(store), "--model", str(model), "--json", "--device", "cpu",
                 "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    for split in ("train", "validation", "test"):
        values = report["splits"][split]
        assert values["fidelity_loss"] > 0 and values["reduced_chi2"] > 0
    assert report["invariance_ratio"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tampered_weights_stop_encoding_with_a_clean_error(trained, tmp_path, capsys):
    import shutil

    _, store, model = trained
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    weights = copy / "autoencoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0" * 10)
    code = main(["encode", str(store), "--model", str(copy), "--out", str(tmp_path / "x.parquet")])
    assert code == 2
    error = capsys.readouterr().err
    assert "sha256" in error and "Traceback" not in error
    assert not (tmp_path / "x.parquet").exists()


def test_encode_fits_matches_parquet_and_other_suffixes_are_refused(trained, tmp_path, capsys):
    from astropy.table import Table

    from specsift.store.tables import read_table

    root, store, model = trained
    for name in ("l.parquet", "l.fits"):
        assert main(["-q", "encode", str(store), "--model", str(model), "--out",
                     str(tmp_path / name), "--device", "cpu", "--batch-size", "16"]) == 0
    parquet, fits_table = read_table(tmp_path / "l.parquet"), Table.read(tmp_path / "l.fits")
    fits_table.convert_bytestring_to_unicode()
    assert parquet.colnames == fits_table.colnames
    for name in parquet.colnames:
        np.testing.assert_array_equal(np.asarray(parquet[name]), np.asarray(fits_table[name]))
    capsys.readouterr()
    assert main(["-q", "encode", str(store), "--model", str(model), "--out",
                 str(tmp_path / "l.txt")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ".parquet or .fits" in err
