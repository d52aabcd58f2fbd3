"""Catalogue files: parquet (default) or FITS, always written atomically, resumable by chunk.

Scoring a survey takes hours, so each fixed chunk of store rows is written as its own part file
the moment it is scored; a killed run rescans the part folder and only scores what is missing. A
manifest records what the parts were computed from (store, models, chunking), so parts of a
different run are never mixed in. The final catalogue is assembled from the parts in store order,
so it does not depend on which process scored which chunk, nor in which order.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.table import Table

from ..atomic import atomic_path
from ..errors import SpecsiftInputError
from ..store.tables import arrow_to_table, table_to_arrow

__all__ = ["CatalogParts", "write_catalog", "read_catalog", "catalog_format", "METADATA_KEY"]

logger = logging.getLogger("specsift.catalog")

METADATA_KEY = "specsift"
_FITS_EXTNAME = "CATALOG"


def catalog_format(path: str | Path) -> str:
    """``fits`` when the name ends in .fits (or .fits.gz), else ``parquet``."""
    name = str(path).lower()
    return "fits" if name.endswith((".fits", ".fits.gz", ".fit")) else "parquet"


class CatalogParts:
    """The part files of one catalogue in progress: ``.<name>.parts/part-<chunk>.parquet``.

    Arguments:
        out: the final catalogue path; parts live in a hidden folder beside it.
        fingerprint: JSON-able description of the inputs; parts recorded under another
            fingerprint are discarded by :meth:`prepare`, not reused (workers that only write
            parts need not pass it).
    """

    def __init__(self, out: str | Path, fingerprint: dict | None = None):
        self.out = Path(out)
        self.folder = self.out.with_name(f".{self.out.name}.parts")
        self.fingerprint = json.loads(json.dumps(fingerprint or {}))

    def prepare(self) -> "CatalogParts":
        """Create the folder; keep its parts only if they were computed from the same inputs."""
        manifest = self.folder / "manifest.json"
        if manifest.exists():
            recorded = json.loads(manifest.read_text())
            if recorded == self.fingerprint:
                logger.info("resuming: %d of the chunks are already scored in %s",
                            len(self.done()), self.folder)
                return self
            logger.warning("%s holds parts of a run with other inputs; starting afresh",
                           self.folder)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(manifest) as tmp:
            tmp.write_text(json.dumps(self.fingerprint, indent=1, sort_keys=True))
        return self

    def path(self, chunk: int) -> Path:
        return self.folder / f"part-{chunk:06d}.parquet"

    def done(self) -> set[int]:
        """Chunks whose part file is complete (atomic writes leave no partial ones)."""
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("part-*.parquet")}

    def write(self, chunk: int, columns: dict[str, np.ndarray]) -> Path:
        """Write one chunk's scores; a crash mid-write leaves no part behind."""
        path = self.path(chunk)
        with atomic_path(path) as tmp:
            pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)
        return path

    def read(self, n_chunks: int) -> dict[str, np.ndarray]:
        """All parts in chunk order, as numpy columns; every chunk must be present."""
        missing = sorted(set(range(n_chunks)) - self.done())
        if missing:
            raise RuntimeError(f"{len(missing)} chunks are not scored yet (first: {missing[0]}); "
                               "rerun the command to finish them")
        table = pa.concat_tables([pq.read_table(self.path(k)) for k in range(n_chunks)])
        return {name: table[name].to_numpy() for name in table.column_names}

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _fits_card_value(value):
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


# -- final catalogue ---------------------------------------------------------------------------

def write_catalog(table: Table, out: str | Path, metadata: dict) -> Path:
    """Write ``table`` atomically as parquet or FITS, with ``metadata`` in the file header.

    Parquet keeps ``metadata`` as JSON under the schema key ``specsift``; FITS keeps each entry as
    a header keyword (long strings use CONTINUE cards) plus the same JSON in ``SPECSIFT`` so that
    :func:`read_catalog` returns identical metadata for both formats.
    """
    out = Path(out)
    blob = json.dumps(metadata, sort_keys=True)
    with atomic_path(out) as tmp:
        if catalog_format(out) == "fits":
            hdu = fits.BinTableHDU(table, name=_FITS_EXTNAME)
            for key, value in metadata.items():
                if len(key) <= 8:
                    hdu.header[key.upper()] = _fits_card_value(value)
            hdu.header[METADATA_KEY.upper()] = blob
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
        else:
            arrow = table_to_arrow(table).replace_schema_metadata({METADATA_KEY: blob})
            pq.write_table(arrow, tmp)
    logger.info("wrote %s (%d objects)", out, len(table))
    return out


def read_catalog(path: str | Path) -> tuple[Table, dict]:
    """Read a catalogue written by :func:`write_catalog`: the table and its metadata dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such catalogue")
    try:
        if catalog_format(path) == "fits":
            with fits.open(path) as hdul:
                hdu = hdul[_FITS_EXTNAME]
                metadata = json.loads(hdu.header.get(METADATA_KEY.upper(), "{}"))
                table = Table(hdu.data, masked=False)
                for name in table.colnames:  # FITS text comes back as padded bytes
                    if table[name].dtype.kind == "S":
                        table[name] = np.char.rstrip(np.char.decode(table[name], "ascii"))
                return table, metadata
        arrow = pq.read_table(path)
    except (OSError, KeyError, pa.ArrowInvalid) as error:
        raise SpecsiftInputError(f"not a readable catalogue ({error})", path=path) from None
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY.encode())
    metadata = json.loads(raw) if raw else {}
    return arrow_to_table(arrow), metadata
