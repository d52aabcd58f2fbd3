"""Read an ingested store: its catalogue, and its spectra in bounded-memory batches.

Spectra are fetched one Parquet row group ("chunk", ``chunk_rows`` objects of one shard) at a
time. Shuffling permutes the chunks of all shards, then mixes the rows of ``shuffle_chunks``
chunks at a time: every epoch visits every selected row exactly once, batches mix objects from
different input files, and memory stays at a few chunks however large the store is.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from astropy.table import Table

from ..errors import SpecsiftInputError
from ..preprocess.split import SPLITS
from .format import read_manifest, read_wave, shard_paths
from .tables import read_table

__all__ = ["SpectraStore"]


class SpectraStore:
    """An ingested store (see :mod:`specsift.store.format`), opened read-only.

    Arguments:
        path: the store folder written by ``specsift ingest``.
        shuffle_chunks: chunks mixed together when shuffling; more mixes better, costs memory
            (one chunk of 256 DESI spectra is about 16 MB).

    Example:
        >>> import tempfile
        >>> from specsift.datapaths import data_dir
        >>> from specsift.store import ingest
        >>> out = tempfile.mkdtemp() + "/desi.store"
        >>> _ = ingest(data_dir() / "real/desi", out, survey="desi")
        >>> store = SpectraStore(out)
        >>> for batch in store.batches(batch_size=512, split="train", shuffle=True, seed=1):
        ...     flux, ivar, z = batch["flux"], batch["ivar"], batch["z"]
        >>> flux.shape
        (2, 7781)
    """

    def __init__(self, path: str | Path, shuffle_chunks: int = 4):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if not self.manifest.get("complete"):
            raise SpecsiftInputError("store is incomplete (its ingest was interrupted, or no input "
                                     "file could be read); rerun the same specsift ingest "
                                     "command to finish it", self.path)
        self.shuffle_chunks = max(int(shuffle_chunks), 1)
        self.survey: str = self.manifest["survey"]
        self.sample: str = self.manifest["sample"]
        self.chunk_rows: int = int(self.manifest["chunk_rows"])
        self.wave: np.ndarray = read_wave(self.path, self.manifest["wave_sha256"])
        shards = self.manifest["shards"]
        self._keys = [shard["key"] for shard in shards]
        sizes = np.array([shard["n"] for shard in shards], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        # shard rows left out of the store (ids kept from an earlier shard): store row -> shard row
        self._kept = {i: np.delete(np.arange(shard["n"] + len(shard["drop"])), shard["drop"])
                      for i, shard in enumerate(shards) if shard.get("drop")}
        self._physical_sizes = sizes + np.array([len(s.get("drop", ())) for s in shards],
                                                dtype=np.int64)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __repr__(self) -> str:
        return (f"SpectraStore({str(self.path)!r}: {len(self)} {self.survey} spectra, "
                f"sample {self.sample!r}, {self.wave.size} pixels)")

    @cached_property
    def meta(self) -> Table:
        """One row per object in store row order (ID, Z, SPLIT, NORM, SNR, ... survey columns)."""
        return read_table(self.path / "meta.parquet")

    @property
    def rejects(self) -> Table:
        """One row per rejected object: FILENAME, ROW, ID, REASON, DETAIL."""
        return read_table(self.path / "rejects.parquet")

    @cached_property
    def _z(self) -> np.ndarray:
        return np.asarray(read_table(self.path / "meta.parquet", ["Z"])["Z"], dtype=np.float32)

    @cached_property
    def _split(self) -> np.ndarray:
        return np.asarray(read_table(self.path / "meta.parquet", ["SPLIT"])["SPLIT"])

    def select(self, split: str | None = None, rows=None) -> np.ndarray:
        """Sorted store rows of one split (or all) and, if given, among ``rows``."""
        if rows is None:
            selected = np.arange(len(self), dtype=np.int64)
        else:
            selected = np.unique(np.asarray(rows, dtype=np.int64))
            if selected.size and (selected[0] < 0 or selected[-1] >= len(self)):
                raise SpecsiftInputError(f"rows must lie in [0, {len(self)}); got {selected[0]} to "
                                 f"{selected[-1]}")
        if split is not None:
            if split not in SPLITS:
                raise SpecsiftInputError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
            selected = selected[self._split[selected] == split]
        return selected

    def _locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row within the shard file) of each store row."""
        rows = np.asarray(rows, dtype=np.int64)
        shard = np.searchsorted(self._offsets, rows, side="right") - 1
        local = rows - self._offsets[shard]
        for i, kept in self._kept.items():
            inside = shard == i
            local[inside] = kept[local[inside]]
        return shard, local

    def chunk_ids(self, rows: np.ndarray) -> np.ndarray:
        """(N,) index of the chunk (shard row group) holding each store row."""
        shard, local = self._locate(rows)
        per_shard = -(-self._physical_sizes // self.chunk_rows)  # chunks in each shard
        first = np.concatenate([[0], np.cumsum(per_shard)])
        return first[shard] + local // self.chunk_rows

    def _read_chunk(self, chunk_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """flux, ivar of ``chunk_rows`` (store rows that all lie in one chunk)."""
        shards, local = self._locate(chunk_rows)
        shard = int(shards[0])
        group = int(local[0] // self.chunk_rows)
        path = shard_paths(self.path, self._keys[shard])["spectra"]
        # opened per chunk: an open ParquetFile keeps ~10 MB of buffers, which would grow with
        # the number of shards visited; reading the footer again costs far less than a chunk
        try:
            with pq.ParquetFile(path) as handle:
                table = handle.read_row_group(group, columns=["flux", "ivar"])
        except (OSError, ValueError) as exc:
            raise SpecsiftInputError(f"unreadable store shard: {exc}", path) from None
        take = local - group * self.chunk_rows
        p = self.wave.size
        out = []
        for name in ("flux", "ivar"):
            column = table.column(name).combine_chunks()
            out.append(column.flatten().to_numpy().reshape(-1, p)[take])
        return out[0], out[1]

    def batches(self, batch_size: int = 256, split: str | None = None, rows=None,
                shuffle: bool = False, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Stream the selected spectra as dicts of numpy arrays.

        Arguments:
            batch_size: objects per batch (the last one may be smaller).
            split: ``train``, ``validation``, ``test`` or None for all.
            rows: store rows to restrict to (e.g. one worker's shard of the rows).
            shuffle: random order (chunk order and rows within ``shuffle_chunks`` chunks).
            seed: the shuffle seed; the same seed gives the same order.

        Yields:
            ``flux`` (B, P) float32, ``ivar`` (B, P) float32 (0 on masked pixels), ``z`` (B,)
            float32 and ``row`` (B,) int64, the index into :attr:`meta`.
        """
        if batch_size < 1:
            raise SpecsiftInputError(f"batch_size must be >= 1, not {batch_size}")
        selected = self.select(split, rows)
        if selected.size == 0:
            return
        ids = self.chunk_ids(selected)
        bounds = np.flatnonzero(np.diff(ids)) + 1
        chunks = np.split(selected, bounds)
        rng = np.random.default_rng(seed)
        if shuffle:
            chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        group = self.shuffle_chunks if shuffle else 1
        carry_rows = np.empty(0, dtype=np.int64)
        carry_flux = carry_ivar = np.empty((0, self.wave.size), dtype=np.float32)
        for start in range(0, len(chunks), group):
            parts = [self._read_chunk(c) for c in chunks[start:start + group]]
            rows_now = np.concatenate([carry_rows] + chunks[start:start + group])
            flux = np.concatenate([carry_flux] + [f for f, _ in parts])
            ivar = np.concatenate([carry_ivar] + [i for _, i in parts])
            if shuffle:
                order = rng.permutation(len(rows_now))
                rows_now, flux, ivar = rows_now[order], flux[order], ivar[order]
            full = len(rows_now) // batch_size * batch_size
            for b in range(0, full, batch_size):
                yield self._batch(rows_now[b:b + batch_size], flux[b:b + batch_size],
                                  ivar[b:b + batch_size])
            carry_rows, carry_flux, carry_ivar = rows_now[full:], flux[full:], ivar[full:]
        if len(carry_rows):
            yield self._batch(carry_rows, carry_flux, carry_ivar)

    def _batch(self, rows, flux, ivar) -> dict[str, np.ndarray]:
        return {"flux": np.ascontiguousarray(flux), "ivar": np.ascontiguousarray(ivar),
                "z": self._z[rows], "row": rows}

    def torch_dataset(self, batch_size: int = 256, split: str | None = None, shuffle: bool = True,
                      seed: int = 0, rows=None):
        """A torch IterableDataset of the same batches, for ``DataLoader(ds, batch_size=None)``."""
        from .dataset import StoreDataset

        return StoreDataset(self, batch_size=batch_size, split=split, shuffle=shuffle, seed=seed,
                            rows=rows)
