"""The sky-line list ships with the package: ingest needs no ../shared beside it."""

from __future__ import annotations

import numpy as np

from specsift.datapaths import data_dir
from specsift.preprocess import masks
from specsift.store import SpectraStore, ingest


def test_packaged_line_list_is_the_shared_one():
    shared = data_dir() / "lines" / "sky-lines.txt"
    assert masks.DEFAULT_SKY_LINES.read_bytes() == shared.read_bytes()


def test_ingest_masks_sky_lines_without_the_shared_data_folder(real_data, tmp_path, monkeypatch):
    coadd = real_data / "desi" / "coadd-4-80613-thru20210324.fits"
    monkeypatch.setenv("SPECSIFT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("SPECSIFT_BENCH", str(tmp_path / "empty"))
    masks.load_sky_lines.cache_clear()
    try:
        report = ingest([coadd], tmp_path / "store", survey="desi", sample="all")
    finally:
        masks.load_sky_lines.cache_clear()
    store = SpectraStore(tmp_path / "store")
    assert report.n_ingested == 1 and not report.failed
    masked = float(np.asarray(store.meta["MASKED_FRACTION"])[0])
    assert masked > 0.13  # the 100 strongest lines on the DESI grid cover 13.7% of its pixels
