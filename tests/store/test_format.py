"""Store layout: chunk-aligned shards from uneven batches, manifest and grid checks."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from specsift import SpecsiftInputError
from specsift.store.format import (read_manifest, read_wave, shard_key, spectra_shard_writer,
                                   write_wave)


def test_uneven_batches_become_row_groups_of_exactly_chunk_rows(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(n, 7)).astype(np.float32) for n in (5, 1, 12, 0, 3)]
    path = tmp_path / "s.spectra.parquet"
    with spectra_shard_writer(path, 7, chunk_rows=4) as append:
        for b in batches:
            append(b, 2 * b)
    handle = pq.ParquetFile(path)
    sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
    assert sizes == [4, 4, 4, 4, 4, 1]
    table = handle.read()
    flux = table.column("flux").combine_chunks().values.to_numpy().reshape(-1, 7)
    np.testing.assert_array_equal(flux, np.concatenate(batches))
    ivar = table.column("ivar").combine_chunks().values.to_numpy().reshape(-1, 7)
    np.testing.assert_array_equal(ivar, 2 * np.concatenate(batches))


def test_failed_write_leaves_no_shard(tmp_path):
    path = tmp_path / "s.spectra.parquet"
    with pytest.raises(RuntimeError):
        with spectra_shard_writer(path, 3, chunk_rows=2) as append:
            append(np.ones((3, 3)), np.ones((3, 3)))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_shard_key_is_stable_and_distinguishes_folders(tmp_path):
    a, b = tmp_path / "x" / "coadd-1.fits", tmp_path / "y" / "coadd-1.fits"
    assert shard_key(a) == shard_key(a) and shard_key(a) != shard_key(b)
    assert shard_key(a).startswith("coadd-1-")


def test_grid_checksum_and_manifest_format_are_checked(tmp_path):
    digest = write_wave(tmp_path, np.arange(5.0))
    np.testing.assert_array_equal(read_wave(tmp_path, digest), np.arange(5.0))
    np.save(tmp_path / "wave.npy", np.arange(6.0))
    with pytest.raises(SpecsiftInputError, match="checksum"):
        read_wave(tmp_path, digest)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(SpecsiftInputError, match="not a specsift store"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "specsift-store",
                                                        "version": 99}))
    with pytest.raises(SpecsiftInputError, match="newer"):
        read_manifest(tmp_path)
