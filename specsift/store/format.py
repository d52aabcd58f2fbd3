"""The on-disk layout of a store: a folder of per-input-file shards plus a JSON manifest.

::

    STORE/
      manifest.json                    what was ingested, how, and from which files
      wave.npy                         (P,) observed-frame wavelength grid, Angstrom
      meta.parquet                     one row per ingested object, store row order
      rejects.parquet                  one row per rejected object: FILENAME, ROW, ID, REASON, DETAIL
      shards/<key>.spectra.parquet     flux, ivar as fixed-size float32 lists; one row group per chunk
      shards/<key>.meta.parquet        that shard's rows of meta.parquet
      shards/<key>.rejects.parquet     that shard's rows of rejects.parquet

One shard per input file makes ingest resumable and idempotent at file granularity: a shard is
written (atomically) before the manifest records its input file as done, and a rerun skips files
the manifest lists with the same size and modification time. Store rows are the shards in sorted
key order, so the same inputs give the same store whatever order they were ingested in.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..errors import SpecsiftInputError

__all__ = ["FORMAT", "VERSION", "MANIFEST", "shard_key", "shard_paths", "read_manifest",
           "write_manifest", "spectra_shard_writer", "read_wave", "write_wave"]

FORMAT = "specsift-store"
VERSION = 1
MANIFEST = "manifest.json"


def shard_key(path: str | Path) -> str:
    """A stable, readable shard name for an input file: its name plus a hash of its full path."""
    path = Path(path).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    name = path.name
    for suffix in (".gz", ".fits", ".fit", ".npz"):
        name = name.removesuffix(suffix)
    return f"{name}-{digest}"


def shard_paths(root: Path, key: str) -> dict[str, Path]:
    """The three files of one shard."""
    return {part: root / "shards" / f"{key}.{part}.parquet"
            for part in ("spectra", "meta", "rejects")}


def read_manifest(root: Path) -> dict:
    """The manifest of the store at ``root``; anything else raises SpecsiftInputError."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise SpecsiftInputError(f"not a specsift store (no {MANIFEST})", root)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecsiftInputError(f"unreadable store manifest: {exc}", path) from None
    if manifest.get("format") != FORMAT:
        raise SpecsiftInputError(f"not a specsift store (format {manifest.get('format')!r})", path)
    if manifest.get("version", 0) > VERSION:
        raise SpecsiftInputError(f"store format version {manifest['version']} is newer than this "
                                 f"specsift understands ({VERSION}); upgrade specsift", path)
    return manifest


def write_manifest(root: Path, manifest: dict) -> None:
    """Replace the manifest atomically: readers see the old or the new one, never half of one."""
    with atomic_path(Path(root) / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))


@contextmanager
def spectra_shard_writer(path: Path, n_pixels: int, chunk_rows: int):
    """Yield ``append(flux, ivar)`` writing (B, P) batches to one Parquet shard, atomically.

    Rows are regrouped so that every row group but the last holds exactly ``chunk_rows`` objects
    (readers locate row ``i`` in group ``i // chunk_rows``), whatever the batch sizes. zstd with
    byte-stream-split (float bytes grouped by significance) compresses noisy float32 spectra
    better than plain zstd and decodes faster.
    """
    column_type = pa.list_(pa.float32(), n_pixels)
    schema = pa.schema([("flux", column_type), ("ivar", column_type)])
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def table(flux: np.ndarray, ivar: np.ndarray) -> pa.Table:
        return pa.Table.from_arrays(
            [pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a, np.float32)
                                                        .reshape(-1)), n_pixels)
             for a in (flux, ivar)], schema=schema)

    with atomic_path(path) as tmp:
        writer = pq.ParquetWriter(tmp, schema, compression="zstd", compression_level=1,
                                  use_dictionary=False, use_byte_stream_split=True)

        def flush(final: bool) -> None:
            if not pending:
                return
            flux = np.concatenate([f for f, _ in pending])
            ivar = np.concatenate([i for _, i in pending])
            full = len(flux) if final else len(flux) // chunk_rows * chunk_rows
            if full:
                writer.write_table(table(flux[:full], ivar[:full]), row_group_size=chunk_rows)
            pending[:] = [(flux[full:], ivar[full:])] if full < len(flux) else []

        def append(flux: np.ndarray, ivar: np.ndarray) -> None:
            pending.append((flux, ivar))
            if sum(len(f) for f, _ in pending) >= chunk_rows:
                flush(final=False)

        try:
            yield append
            flush(final=True)
        finally:
            writer.close()


def write_wave(root: Path, wave: np.ndarray) -> str:
    """Write the grid atomically and return its SHA-256 (recorded in the manifest)."""
    wave = np.ascontiguousarray(wave, dtype=np.float64)
    with atomic_path(Path(root) / "wave.npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, wave, allow_pickle=False)
    return hashlib.sha256(wave.tobytes()).hexdigest()


def read_wave(root: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read the grid (no pickle) and check it against the manifest's checksum."""
    path = Path(root) / "wave.npy"
    try:
        wave = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SpecsiftInputError(f"unreadable wavelength grid: {exc}", path) from None
    if expected_sha256 and hashlib.sha256(wave.tobytes()).hexdigest() != expected_sha256:
        raise SpecsiftInputError("wavelength grid does not match the checksum in the manifest "
                                 "(file changed or corrupt)", path)
    return wave
