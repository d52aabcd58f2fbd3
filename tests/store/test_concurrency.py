"""Two writers, one store: the second waits its turn or stops, and never loses the first's work;
the same inputs give the same store in any order, in any number of runs or processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from specsift.store import SpectraStore, ingest

from .conftest import copy_mock


def _linked(mock_desi_dir, folder, names):
    """Hard links to the mock's files under new names: distinct inputs, no copying."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, i in names.items():
        for kind in ("coadd", "redrock"):
            os.link(mock_desi_dir / f"{kind}-mock-{i:04d}.fits", folder / f"{kind}-{name}.fits")
    return folder


def _ingest_process(inputs, out):
    command = [sys.executable, "-m", "specsift.cli.main", "-q", "ingest", "--survey", "desi",
               *map(str, inputs), "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_second_ingest_into_the_same_store_never_loses_the_first_ones_files(mock_desi_dir,
                                                                            tmp_path):
    a = _linked(mock_desi_dir, tmp_path / "a", {f"a{k:02d}": k % 3 for k in range(12)})
    b = _linked(mock_desi_dir, tmp_path / "b", {"b00": 0})
    out = tmp_path / "store"
    first = _ingest_process([a], out)
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").exists() and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = _ingest_process([b], out)  # starts while the first is still ingesting
    runs = {"a": (first, a), "b": (second, b)}
    results = {name: (p.wait(timeout=300), p.communicate()[1]) for name, (p, _) in runs.items()}
    assert results["a"][0] == 0, results["a"][1]
    store = SpectraStore(out)
    recorded = {entry["path"] for entry in store.manifest["inputs"].values()}
    for name, (code, stderr) in results.items():
        files = {str(p.resolve()) for p in runs[name][1].glob("coadd-*.fits")}
        if code == 0:  # a run that says it ingested its files must find them in the store
            assert files <= recorded, f"run {name} lost its files"
        else:
            assert code == 2 and "another specsift ingest" in stderr and "Traceback" not in stderr
            assert len(stderr.strip().splitlines()) == 1, stderr
    assert len(store) + len(store.rejects) == store.manifest["n_read"]


def test_which_copy_of_a_duplicate_id_is_kept_does_not_depend_on_the_order_of_runs(
        mock_desi_dir, tmp_path):
    src = _linked(mock_desi_dir, tmp_path / "in", {"copy-0000": 0})
    copy_mock(mock_desi_dir, src, files=(0,))
    first, second = src / "coadd-mock-0000.fits", src / "coadd-copy-0000.fits"
    stores = {}
    for name, order in (("mock_first", (first, second)), ("copy_first", (second, first))):
        out = tmp_path / name
        ingest([order[0]], out, survey="desi", sample="all")
        ingest(list(order), out, survey="desi", sample="all")
        stores[name] = out
    for table in ("meta.parquet", "rejects.parquet"):
        assert (stores["mock_first"] / table).read_bytes() == \
            (stores["copy_first"] / table).read_bytes(), table
    one, two = (SpectraStore(p) for p in stores.values())
    np.testing.assert_array_equal(next(one.batches(400))["flux"], next(two.batches(400))["flux"])
    dups = one.rejects[one.rejects["REASON"] == "duplicate id"]
    assert len(dups) == len(one) > 0 and set(one.meta["FILENAME"]) == {str(second)}


def test_two_worker_processes_give_a_byte_identical_store(mock_desi_dir, tmp_path):
    src = copy_mock(mock_desi_dir, tmp_path / "in")
    _linked(mock_desi_dir, src, {"again-0001": 1})  # duplicates across files, too
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    ingest(src, serial, survey="desi", sample="all", chunk_rows=64)
    ingest(src, parallel, survey="desi", sample="all", chunk_rows=64, workers=2)
    def files(root):  # the lock file holds the pid of the last writer, not data
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()
                      and p.name != ".lock")

    assert files(serial) == files(parallel)
    files = files(serial)
    for name in files:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
