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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..errors import SpecsiftInputError

__all__ = ["FORMAT", "VERSION", "MANIFEST", "shard_key", "shard_paths", "read_manifest",
           "write_manifest", "write_spectra_shard", "read_wave", "write_wave"]

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


def write_spectra_shard(path: Path, flux: np.ndarray, ivar: np.ndarray, chunk_rows: int) -> None:
    """Write (M, P) flux and ivar as Parquet with one row group per ``chunk_rows`` objects.

    zstd with byte-stream-split (float bytes grouped by significance) compresses noisy float32
    spectra better than plain zstd and decodes faster; row groups are the unit a reader fetches.
    """
    p = flux.shape[1]

    def column(values: np.ndarray) -> pa.Array:
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, p)

    table = pa.table({"flux": column(flux), "ivar": column(ivar)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=max(int(chunk_rows), 1), compression="zstd",
                       use_dictionary=False, use_byte_stream_split=True, compression_level=1)


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
