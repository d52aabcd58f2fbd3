"""``specsift ingest`` and ``specsift info`` end to end on the mock DESI survey."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.io import fits

from specsift.cli.main import main
from specsift.store import SpectraStore


@pytest.fixture(scope="module")
def bgs_store(mock_desi_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "bgs"
    assert main(["-q", "ingest", "--survey", "desi", "--sample", "bgs", str(mock_desi_dir),
                 "--out", str(out)]) == 0
    return out


def test_bgs_store_holds_exactly_the_reported_galaxies_of_the_truth(bgs_store, mock_desi_dir):
    truth = fits.getdata(mock_desi_dir / "truth.fits", "TRUTH")
    reported = np.char.strip(np.asarray(truth["REPORTED_SPECTYPE"]).astype(str))
    sample = np.char.strip(np.asarray(truth["SAMPLE"]).astype(str))
    z = truth["REPORTED_Z"]
    wanted = set(truth["TARGETID"][(sample == "BGS") & (reported == "GALAXY") & (z >= 0)
                                   & (z <= 0.8)].tolist())
    store = SpectraStore(bgs_store)
    ids = set(np.asarray(store.meta["ID"]).tolist())
    rejects = store.rejects
    not_selection = {int(i) for i, r in zip(rejects["ID"], rejects["REASON"])
                     if not r.startswith("selection")}
    assert ids == wanted - not_selection and len(ids) > 0.95 * len(wanted)
    assert (np.asarray(store.meta["SAMPLE"]) == "bgs").all()
    assert (np.asarray(store.meta["SPECTYPE"]) == "GALAXY").all()


def test_info_json_reports_counts_splits_grid_masks_and_snr(bgs_store, capsys):
    capsys.readouterr()
    assert main(["info", str(bgs_store), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    store = SpectraStore(bgs_store)
    assert info["n_objects"] == len(store)
    assert info["n_read"] == 550 == info["n_objects"] + info["n_rejected"]
    assert sum(info["splits"].values()) == len(store)
    assert abs(info["splits"]["train"] / len(store) - 0.70) < 0.06
    assert info["classes"] == {"GALAXY": len(store)}
    assert info["wave"]["n_pixels"] == 7781 and info["wave"]["min"] == 3600.0
    assert info["masked_fraction"]["p50"] == pytest.approx(
        float(np.median(store.meta["MASKED_FRACTION"])))
    assert 0 < info["snr"]["p5"] < info["snr"]["p50"] < info["snr"]["p95"]
    assert sum(info["rejects_by_reason"].values()) == info["n_rejected"]


def test_info_text_names_the_numbers(bgs_store, capsys):
    capsys.readouterr()
    assert main(["info", str(bgs_store)]) == 0
    text = capsys.readouterr().out
    n = len(SpectraStore(bgs_store))
    assert f"{n} ingested" in text and "7781 px, 3600.0-9824.0 A" in text and "GALAXY" in text


def test_rerun_is_a_no_op_and_mws_sample_holds_stars(bgs_store, mock_desi_dir, tmp_path):
    before = (bgs_store / "meta.parquet").read_bytes()
    assert main(["-q", "ingest", "--survey", "desi", "--sample", "bgs", str(mock_desi_dir),
                 "--out", str(bgs_store)]) == 0
    assert (bgs_store / "meta.parquet").read_bytes() == before
    out = tmp_path / "mws"
    assert main(["-q", "ingest", "--survey", "desi", "--sample", "mws", str(mock_desi_dir),
                 "--out", str(out)]) == 0
    store = SpectraStore(out)
    assert len(store) > 100 and (np.asarray(store.meta["SPECTYPE"]) == "STAR").all()


def test_unreadable_file_exits_2_naming_it_after_ingesting_the_rest(mock_desi_dir, tmp_path,
                                                                    capsys):
    src = tmp_path / "in"
    src.mkdir()
    for kind in ("coadd", "redrock"):
        shutil.copy(mock_desi_dir / f"{kind}-mock-0002.fits", src)
    (src / "coadd-junk.fits").write_bytes(b"SIMPLE  =  this is not FITS" * 10)
    out = tmp_path / "store"
    code = main(["ingest", "--survey", "desi", str(src), "--out", str(out)])
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert any(str(src / "coadd-junk.fits") in line and "not a readable FITS" in line
               for line in errors)
    assert len(SpectraStore(out)) + len(SpectraStore(out).rejects) == 150
    assert main(["info", str(out), "--json"]) == 0
    assert str(src / "coadd-junk.fits") in json.loads(capsys.readouterr().out)["failed_files"]


def test_bad_arguments_give_one_line_errors(mock_desi_dir, tmp_path, capsys):
    assert main(["ingest", "--survey", "desi", str(tmp_path / "none"), "--out",
                 str(tmp_path / "s")]) == 2
    assert main(["info", str(tmp_path)]) == 2
    config = tmp_path / "c.toml"
    config.write_text("[masks]\nwidth = 3\n")
    assert main(["ingest", "--survey", "desi", "--config", str(config), str(tmp_path),
                 "--out", str(tmp_path / "s")]) == 2
    (tmp_path / "file.txt").write_text("x")
    assert main(["ingest", "--survey", "desi", str(mock_desi_dir / "coadd-mock-0000.fits"),
                 "--out", str(tmp_path / "file.txt" / "store")]) == 2
    assert main(["ingest", "--survey", "desi", "--chunk-rows", "0", str(mock_desi_dir),
                 "--out", str(tmp_path / "s")]) == 2
    messages = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert len(messages) == 5 and "cannot write here" in messages[3]
    assert "chunk_rows must be at least 1" in messages[4]
    assert "no such file or folder" in messages[0] and "not a specsift store" in messages[1]
    assert "unknown key(s) width" in messages[2]
