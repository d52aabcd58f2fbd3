"""Ingest: accounting, resume after a kill, idempotence, duplicates and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np

from specsift.preprocess.extinction import deredden
import pytest
from astropy.io import fits

import specsift.store.build as build
from specsift import SpecsiftInputError
from specsift.store import SpectraStore, ingest
from specsift.store.format import MANIFEST

from .conftest import copy_mock


def _manifest(path):
    return json.loads((path / MANIFEST).read_text())


def test_every_object_read_is_ingested_or_rejected_with_a_reason(all_store, mock_desi_dir):
    truth = fits.getdata(mock_desi_dir / "truth.fits", "TRUTH")
    m = all_store.manifest
    assert m["n_read"] == len(truth) == m["n_ingested"] + m["n_rejected"]
    rejects = all_store.rejects
    assert len(rejects) == m["n_rejected"] and (rejects["REASON"] != "").all()
    ids = np.concatenate([np.asarray(all_store.meta["ID"]), np.asarray(rejects["ID"], int)])
    np.testing.assert_array_equal(np.sort(ids), np.sort(truth["TARGETID"]))


def test_resume_after_a_kill_gives_the_same_store(mock_desi_dir, tmp_path, monkeypatch,
                                                  all_store):
    calls = []
    real_read = build._read_batches

    def read_then_die(path, *args):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_read(path, *args)

    monkeypatch.setattr(build, "_read_batches", read_then_die)
    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        ingest(mock_desi_dir, out, survey="desi", sample="all", chunk_rows=64)
    assert len(_manifest(out)["inputs"]) == 1
    with pytest.raises(SpecsiftInputError, match="incomplete"):
        SpectraStore(out)
    monkeypatch.setattr(build, "_read_batches", real_read)
    report = ingest(mock_desi_dir, out, survey="desi", sample="all", chunk_rows=64)
    assert len(report.files_skipped) == 1 and len(report.files_ingested) == 2
    store = SpectraStore(out)
    np.testing.assert_array_equal(store.meta["ID"], all_store.meta["ID"])
    a = next(store.batches(batch_size=300))
    b = next(all_store.batches(batch_size=300))
    np.testing.assert_array_equal(a["flux"], b["flux"])
    np.testing.assert_array_equal(np.asarray(store.meta["SPLIT"]), np.asarray(all_store.meta["SPLIT"]))


def test_second_run_changes_nothing(mock_desi_dir, tmp_path):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(0, 1))
    out = tmp_path / "store"
    ingest(src, out, survey="desi", sample="bgs")
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    report = ingest(src, out, survey="desi", sample="bgs")
    assert report.files_ingested == [] and len(report.files_skipped) == 2
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    ids = np.asarray(SpectraStore(out).meta["ID"])
    assert len(np.unique(ids)) == len(ids)


def test_adding_files_extends_the_store_in_input_order(mock_desi_dir, tmp_path, all_store):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(2,))
    out = tmp_path / "store"
    ingest(src, out, survey="desi", sample="all", chunk_rows=64)
    copy_mock(mock_desi_dir, src, files=(0, 1))
    report = ingest(src, out, survey="desi", sample="all", chunk_rows=64)
    assert len(report.files_ingested) == 2
    np.testing.assert_array_equal(SpectraStore(out).meta["ID"], all_store.meta["ID"])


def test_same_objects_in_two_files_are_rejected_as_duplicates(mock_desi_dir, tmp_path):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(0,))
    for kind in ("coadd", "redrock"):  # "copy" sorts before "mock": the copy is ingested first
        (src / f"{kind}-copy-0000.fits").write_bytes((src / f"{kind}-mock-0000.fits").read_bytes())
    report = ingest(src, tmp_path / "store", survey="desi", sample="all")
    store = SpectraStore(tmp_path / "store")
    dups = store.rejects[store.rejects["REASON"] == "duplicate id"]
    assert report.n_read == 400 and len(dups) == len(store) > 0
    assert set(store.meta["FILENAME"]) == {str(src / "coadd-copy-0000.fits")}
    assert set(dups["FILENAME"]) == {str(src / "coadd-mock-0000.fits")}
    assert all("coadd-copy-0000.fits" in d for d in dups["DETAIL"])
    np.testing.assert_array_equal(np.sort(np.asarray(dups["ID"], int)), np.sort(store.meta["ID"]))


@pytest.fixture(scope="module")
def bad_inputs(mock_desi_dir, tmp_path_factory):
    """Mock files with bad objects (file 0), a truncated file (1), a missing HDU (2) and a
    file whose blue arm is shifted off the DESI grid by half a pixel."""
    src = copy_mock(mock_desi_dir, tmp_path_factory.mktemp("bad"))
    with fits.open(src / "coadd-mock-0000.fits", mode="update") as hdul:
        hdul["B_FLUX"].data[3, 100:110] = np.nan
        hdul["R_FLUX"].data[4, 500] = np.inf  # 6160 A: outside the arm overlaps
        hdul["Z_IVAR"].data[5, 1000:1010] = -1.0
        for arm in "BRZ":
            hdul[f"{arm}_IVAR"].data[6] = 0.0
    path = src / "coadd-mock-0001.fits"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    path = src / "coadd-mock-0002.fits"
    with fits.open(path) as hdul:
        kept = fits.HDUList([h.copy() for h in hdul if h.name != "R_FLUX"])
    kept.writeto(path, overwrite=True)
    with fits.open(src / "coadd-mock-0000.fits") as hdul:
        shifted = fits.HDUList([h.copy() for h in hdul])
    shifted["B_WAVELENGTH"].data = shifted["B_WAVELENGTH"].data + 0.4
    shifted.writeto(src / "coadd-offgrid.fits")
    return src


def test_bad_objects_are_rejected_naming_file_row_id_and_problem(bad_inputs, tmp_path):
    report = ingest(bad_inputs, tmp_path / "store", survey="desi", sample="all")
    store = SpectraStore(tmp_path / "store")
    rejects = store.rejects
    by_row = {int(r["ROW"]): r for r in rejects}
    expected = {3: "bad data: non-finite flux where ivar > 0",
                4: "bad data: non-finite flux where ivar > 0",
                5: "bad data: negative ivar", 6: "bad data: all pixels masked"}
    targetid = fits.getdata(bad_inputs / "coadd-mock-0000.fits", "FIBERMAP")["TARGETID"]
    for row, reason in expected.items():
        assert by_row[row]["REASON"] == reason
        assert by_row[row]["FILENAME"] == str(bad_inputs / "coadd-mock-0000.fits")
        assert by_row[row]["ID"] == str(targetid[row])
    assert by_row[3]["DETAIL"] == "10 of 7781 pixels" and by_row[5]["DETAIL"] == "10 of 7781 pixels"
    assert report.n_read == 200 == len(store) + len(rejects)


def test_unreadable_files_are_recorded_and_the_others_ingested(bad_inputs, tmp_path):
    out = tmp_path / "store"
    report = ingest(bad_inputs, out, survey="desi", sample="all")
    assert report.files_ingested == [str(bad_inputs / "coadd-mock-0000.fits")]
    truncated, no_hdu = (str(bad_inputs / f"coadd-mock-000{i}.fits") for i in (1, 2))
    offgrid = str(bad_inputs / "coadd-offgrid.fits")
    assert set(report.failed) == {truncated, no_hdu, offgrid}
    assert truncated in report.failed[truncated] and "trunc" in report.failed[truncated]
    assert "missing HDU R_FLUX" in report.failed[no_hdu]
    assert "not on the DESI grid" in report.failed[offgrid]
    failed = {v["path"] for v in _manifest(out)["failed"].values()}
    assert failed == {truncated, no_hdu, offgrid}
    again = ingest(bad_inputs, out, survey="desi", sample="all")  # retried, not skipped
    assert set(again.failed) == set(report.failed) and len(again.files_skipped) == 1


def test_file_on_another_wavelength_grid_is_refused(mock_desi_dir, tmp_path, monkeypatch):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(0, 1))
    real_read = build._read_batches

    def second_file_cropped(path, *args):
        for spectra in real_read(path, *args):
            yield spectra if "0000" in str(path) else type(spectra)(
                spectra.wave[:-10], spectra.flux[:, :-10], spectra.ivar[:, :-10],
                spectra.mask[:, :-10], spectra.z, spectra.ids, spectra.meta, spectra.survey)

    monkeypatch.setattr(build, "_read_batches", second_file_cropped)
    report = ingest(src, tmp_path / "store", survey="desi", sample="all")
    problem = report.failed[str(src / "coadd-mock-0001.fits")]
    assert "wavelength grid (7771 px" in problem and "store's (7781 px" in problem
    assert str(src / "coadd-mock-0001.fits") in problem


def test_existing_store_with_other_settings_is_not_mixed(all_store, mock_desi_dir, tmp_path):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(0,))
    out = tmp_path / "store"
    ingest(src, out, survey="desi", sample="all")
    with pytest.raises(SpecsiftInputError, match="different sample"):
        ingest(src, out, survey="desi", sample="bgs")
    ingest(src, out, survey="desi", sample="bgs", overwrite=True)
    assert SpectraStore(out).sample == "bgs"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(SpecsiftInputError, match="not a specsift store"):
        ingest(src, tmp_path / "other", survey="desi")


def test_apogee_bulk_file_streams_in_batches_without_renormalising(mock_apogee_dir, tmp_path):
    from specsift.io import apogee

    path = mock_apogee_dir / "spectra-mock.fits"
    report = ingest(path, tmp_path / "store", survey="apogee", chunk_rows=64,
                    reader_options={"batch_size": 100})
    store = SpectraStore(tmp_path / "store")
    raw = apogee.read(path)
    assert report.n_read == len(raw) == len(store) + len(store.rejects)
    assert (np.asarray(store.meta["NORM"]) == 1).all()
    np.testing.assert_array_equal(np.asarray(store.meta["ID"]), raw.ids[np.asarray(store.meta["ROW"])])
    rows = np.asarray(store.meta["ROW"])
    for batch in store.batches(batch_size=150):
        good = batch["ivar"] > 0
        source = raw.flux[rows[batch["row"]]]
        np.testing.assert_array_equal(batch["flux"][good], source[good])
        assert not (good & raw.mask[rows[batch["row"]]]).any()


def test_shard_written_but_not_recorded_before_a_hard_kill_is_redone(mock_desi_dir, tmp_path):
    src = copy_mock(mock_desi_dir, tmp_path / "in", files=(0, 1))
    out = tmp_path / "store"
    ingest(src, out, survey="desi", sample="bgs")
    expected = np.asarray(SpectraStore(out).meta["ID"])
    manifest = _manifest(out)  # as if killed after writing file 1's shard, before recording it
    last = sorted(manifest["inputs"])[-1]
    del manifest["inputs"][last]
    manifest["complete"] = False
    (out / MANIFEST).write_text(json.dumps(manifest))
    leftover = out / "shards" / ".coadd-mock-0001-x.spectra.parquet.abc.tmp.parquet"
    leftover.write_bytes(b"half a shard")  # a write cut short by the kill
    report = ingest(src, out, survey="desi", sample="bgs")
    assert len(report.files_ingested) == 1 and len(report.files_skipped) == 1
    assert not leftover.exists()
    np.testing.assert_array_equal(np.asarray(SpectraStore(out).meta["ID"]), expected)


def test_real_desi_coadds_sky_fibres_rejected_galaxy_normalised(real_data, tmp_path):
    import specsift

    report = ingest(real_data / "desi", tmp_path / "store", survey="desi", sample="all")
    store = SpectraStore(tmp_path / "store")
    assert report.n_read == len(store) + len(store.rejects) and not report.failed
    reasons = dict(zip(zip(store.rejects["FILENAME"], store.rejects["ROW"]),
                       store.rejects["REASON"]))
    raw = specsift.read(real_data / "desi" / "coadd-5-169-thru20210419.fits", survey="desi")
    for row in np.flatnonzero(~np.asarray(raw.meta["IS_TARGET"], bool)):
        key = (str(real_data / "desi" / "coadd-5-169-thru20210419.fits"), row)
        assert reasons[key] == "bad data: not a target (sky or empty fibre)"
    galaxy = specsift.read(real_data / "desi" / "coadd-4-80613-thru20210324.fits", survey="desi")
    i = int(np.flatnonzero(np.asarray(store.meta["ID"]) == galaxy.ids[0])[0])
    z = galaxy.z[0]
    good = next(store.batches(batch_size=len(store), rows=[i]))["ivar"][0] > 0
    window = (galaxy.wave >= 5300 * (1 + z)) & (galaxy.wave <= 5850 * (1 + z)) & good
    dereddened, _ = deredden(galaxy.wave, galaxy.flux[:1], galaxy.ivar[:1],
                             np.asarray(galaxy.meta["EBV"][:1], float))
    assert store.meta["NORM"][i] == pytest.approx(np.median(dereddened[0, window]), rel=1e-5)
