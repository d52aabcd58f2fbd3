"""Reading a store: exact values back, every row once per epoch, shuffling across shards."""

from __future__ import annotations

import json

import numpy as np

from specsift.preprocess.extinction import deredden
import pytest
import torch
from torch.utils.data import DataLoader

import specsift
from specsift import SpecsiftInputError
from specsift.store import SpectraStore


def _rows(batches):
    return np.concatenate([b["row"] for b in batches])


def test_batches_return_the_normalised_input_spectra(all_store):
    meta = all_store.meta
    batch = next(all_store.batches(batch_size=80))
    assert batch["flux"].shape == (80, all_store.wave.size) and batch["flux"].dtype == np.float32
    np.testing.assert_array_equal(batch["row"], np.arange(80))
    for i in (0, 79):
        raw = specsift.read(meta["FILENAME"][i], survey="desi")[int(meta["ROW"][i])]
        assert raw.ids[0] == meta["ID"][i]
        good = batch["ivar"][i] > 0
        flux, ivar = deredden(raw.wave, raw.flux, raw.ivar, np.atleast_1d(float(meta["EBV"][i])))
        np.testing.assert_allclose(batch["flux"][i, good] * meta["NORM"][i], flux[0, good],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch["ivar"][i, good] / meta["NORM"][i] ** 2,
                                   ivar[0, good], rtol=1e-5)
        assert not np.any(good & raw.mask[0])
        assert batch["z"][i] == np.float32(meta["Z"][i])


def test_masked_pixels_have_zero_ivar_and_zero_flux(all_store):
    for batch in all_store.batches(batch_size=200):
        masked = batch["ivar"] == 0
        assert (batch["flux"][masked] == 0).all()
        fraction = masked.mean(axis=1)
        np.testing.assert_allclose(fraction, all_store.meta["MASKED_FRACTION"][batch["row"]],
                                   atol=1e-6)


def test_unshuffled_batches_cover_all_rows_in_order(all_store):
    rows = _rows(all_store.batches(batch_size=50))
    np.testing.assert_array_equal(rows, np.arange(len(all_store)))


def test_shuffle_covers_every_row_once_mixes_files_and_follows_the_seed(all_store):
    batches = list(all_store.batches(batch_size=50, shuffle=True, seed=1))
    rows = _rows(batches)
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(all_store)))
    assert not np.array_equal(rows, np.arange(len(all_store)))
    assert all(len(b["row"]) == 50 for b in batches[:-1])
    files = np.asarray(all_store.meta["FILENAME"])
    assert len(set(files[batches[0]["row"]])) > 1
    np.testing.assert_array_equal(_rows(all_store.batches(batch_size=50, shuffle=True, seed=1)),
                                  rows)
    assert not np.array_equal(_rows(all_store.batches(batch_size=50, shuffle=True, seed=2)), rows)


def test_split_and_rows_select_subsets(all_store):
    split = np.asarray(all_store.meta["SPLIT"])
    for name in ("train", "validation", "test"):
        rows = _rows(all_store.batches(batch_size=64, split=name, shuffle=True))
        np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(split == name))
    subset = np.array([3, 70, 71, 200, 400])
    np.testing.assert_array_equal(_rows(all_store.batches(batch_size=2, rows=subset)), subset)
    with pytest.raises(ValueError, match="rows must lie in"):
        next(all_store.batches(rows=[len(all_store)]))


def test_dataloader_epochs_cover_all_rows_once_and_reshuffle(all_store):
    ds = all_store.torch_dataset(batch_size=64, shuffle=True, seed=3)
    epochs = []
    for _ in range(2):
        batches = list(DataLoader(ds, batch_size=None))
        assert isinstance(batches[0]["flux"], torch.Tensor)
        assert batches[0]["flux"].dtype == torch.float32 and batches[0]["row"].dtype == torch.int64
        rows = torch.cat([b["row"] for b in batches]).numpy()
        np.testing.assert_array_equal(np.sort(rows), np.arange(len(all_store)))
        epochs.append(rows)
    assert not np.array_equal(epochs[0], epochs[1])


def test_dataloader_workers_split_the_rows_without_overlap(all_store):
    ds = all_store.torch_dataset(batch_size=64, split="train", seed=0)
    rows = torch.cat([b["row"] for b in DataLoader(ds, batch_size=None, num_workers=2)]).numpy()
    np.testing.assert_array_equal(np.sort(rows), all_store.select("train"))


def test_opening_something_else_is_a_clear_error(tmp_path, all_store):
    with pytest.raises(SpecsiftInputError, match="not a specsift store"):
        SpectraStore(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**all_store.manifest, "complete": False}))
    with pytest.raises(SpecsiftInputError, match="incomplete"):
        SpectraStore(tmp_path)
