"""``specsift encode``: latents, reconstruction chi-square and flags for every object of a store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import SpecsiftInputError
from ..preprocess.split import SPLITS
from ._defaults import add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.models")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode", help="encode a store with a trained autoencoder",
        description="Write one row per object: ID, SPLIT, Z, NORM, LATENTS (S-vector), CHI2 "
                    "(reduced chi-square of the reconstruction), N_GOOD, FLAG (0 = fine; 1 no "
                    "valid pixels, 2 redshift outside the model range, 4 non-finite input) and "
                    "ROW. Parquet (streamed) or FITS, chosen by the extension of --out.")
    parser.add_argument("store", type=Path)
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    parser.add_argument("--out", type=Path, required=True, metavar="LATENTS",
                        help="output table, .parquet or .fits")
    parser.add_argument("--split", choices=SPLITS, default=None)
    parser.add_argument("--batch-size", type=int, default=512)
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pyarrow.parquet as pq
    from astropy.table import Table, vstack

    from ..atomic import atomic_path
    from ..models.inference import encode_batches
    from ..models.inputs import FLAG_NAMES
    from ..models.modeldir import ModelDir
    from ..runtime import progress, resolve_device
    from ..store import SpectraStore
    from ..store.tables import table_to_arrow

    suffix = args.out.suffix.lower()
    if suffix not in (".parquet", ".fits"):
        raise SpecsiftInputError(f"{args.out}: output must end in .parquet or .fits")
    device = resolve_device(args.device)
    store = SpectraStore(args.store)
    autoencoder = ModelDir(args.model).load_autoencoder(device=device)
    meta = store.meta
    columns = {name: np.asarray(meta[name]) for name in ("ID", "SPLIT", "Z", "NORM")}
    n_total = len(store) if args.split is None else int((columns["SPLIT"] == args.split).sum())
    flag_counts = dict.fromkeys(FLAG_NAMES, 0)
    parts, writer = [], None
    with atomic_path(args.out) as tmp:
        bar = progress(total=n_total, desc="encode", unit="spectra")
        for batch in encode_batches(autoencoder, store, batch_size=args.batch_size,
                                    split=args.split, device=device):
            rows = batch["row"]
            table = Table({**{name: values[rows] for name, values in columns.items()},
                           "LATENTS": batch["latents"].astype(np.float32),
                           "CHI2": batch["chi2"].astype(np.float32),
                           "N_GOOD": batch["n_good"].astype(np.int32),
                           "FLAG": batch["flag"].astype(np.int32),
                           "ROW": rows.astype(np.int64)})
            for bit in flag_counts:
                flag_counts[bit] += int(((batch["flag"] & bit) > 0).sum())
            if suffix == ".parquet":
                arrow = table_to_arrow(table)
                writer = writer or pq.ParquetWriter(tmp, arrow.schema, compression="zstd")
                writer.write_table(arrow)
            else:  # FITS cannot be appended row-wise; the per-object table is small
                parts.append(table)
            bar.update(len(rows))
        bar.close()
        if writer is not None:
            writer.close()
        if writer is None and not parts:
            raise SpecsiftInputError("no objects selected: nothing to encode")
        if parts:
            vstack(parts).write(tmp, format="fits", overwrite=True)
    for bit, count in flag_counts.items():
        if count:
            logger.warning("%d objects flagged: %s (FLAG & %d)", count, FLAG_NAMES[bit], bit)
    logger.info("wrote %s (%d objects)", args.out, n_total)
    return 0

