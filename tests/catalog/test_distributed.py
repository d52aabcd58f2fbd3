"""Chunked scoring: Dask workers, resumed runs and FITS output give the single-process catalogue."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from specsift.catalog import ScoreJob, read_catalog, score_catalog
from specsift.catalog import distributed


def _job(setup, out, **kw):
    return ScoreJob(str(setup.store), str(setup.galaxy), str(setup.star), str(out),
                    batch_size=64, chunk_size=100, device="cpu", **kw)


@pytest.fixture(scope="module")
def single(scoring_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "catalog.parquet"
    score_catalog(_job(scoring_setup, out, torch_threads=1))
    return read_catalog(out)


def _assert_same(a, b):
    (ta, ma), (tb, mb) = a, b
    assert ta.colnames == tb.colnames and len(ta) == len(tb)
    for name in ta.colnames:
        np.testing.assert_array_equal(np.asarray(ta[name]), np.asarray(tb[name]), err_msg=name)
    assert {k: v for k, v in ma.items()} == {k: v for k, v in mb.items()}


def test_dask_two_workers_give_the_single_process_catalog(scoring_setup, single, tmp_path):
    out = tmp_path / "catalog.parquet"
    score_catalog(_job(scoring_setup, out, torch_threads=1), workers=2, scheduler="dask")
    _assert_same(read_catalog(out), single)
    assert not distributed.CatalogParts(out).folder.exists()  # parts cleaned up after the merge


def test_killed_run_resumes_scoring_only_the_missing_chunks(scoring_setup, single, tmp_path,
                                                            monkeypatch):
    out = tmp_path / "catalog.parquet"
    job = _job(scoring_setup, out, torch_threads=1)
    job.parts.prepare()
    distributed._score_chunk(job, 0)  # a run killed after its first chunk
    distributed._score_chunk(job, 2)
    scored = []
    original = distributed._score_chunk
    def recording(job, chunk, device=None):
        scored.append(chunk)
        return original(job, chunk, device)

    monkeypatch.setattr(distributed, "_score_chunk", recording)
    score_catalog(job)
    assert scored == [1, 3]
    _assert_same(read_catalog(out), single)


def test_fits_catalog_holds_the_same_rows_and_metadata_as_parquet(scoring_setup, single, tmp_path):
    out = tmp_path / "catalog.fits"
    score_catalog(_job(scoring_setup, out, torch_threads=1))
    table, metadata = read_catalog(out)
    ref, ref_meta = single
    assert metadata == ref_meta
    for name in ("TARGETID", "RANK", "IS_STAR", "OUTLIER_SCORE", "SPECTYPE", "FILENAME"):
        np.testing.assert_array_equal(np.asarray(table[name]), np.asarray(ref[name]), err_msg=name)
    header = fits.getheader(out, "CATALOG")
    assert header["STARRULE"] == "chi2" and header["STARTHR"] == 0.0


def test_unknown_scheduler_is_refused(scoring_setup, tmp_path):
    with pytest.raises(ValueError, match="scheduler"):
        score_catalog(_job(scoring_setup, tmp_path / "c.parquet"), scheduler="ray")
