"""``specsift encode``: latents, reconstruction chi-square and flags for every object of a store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
    parser.add_argument("--split", choices=("train", "validation", "test"), default=None)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pyarrow as pa

    from ..atomic import atomic_path
    from ..models.inference import encode_batches
    from ..models.inputs import FLAG_NAMES
    from ..models.modeldir import ModelDir
    from ..runtime import progress, resolve_device
    from ..store import SpectraStore

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
            latents = batch["latents"].astype(np.float32)
            table = pa.table({
                **{name: pa.array(values[rows]) for name, values in columns.items()},
                "LATENTS": pa.FixedSizeListArray.from_arrays(pa.array(latents.reshape(-1)),
                                                             latents.shape[1]),
                "CHI2": pa.array(batch["chi2"].astype(np.float32)),
                "N_GOOD": pa.array(batch["n_good"].astype(np.int32)),
                "FLAG": pa.array(batch["flag"].astype(np.int32)),
                "ROW": pa.array(rows.astype(np.int64))})
            for bit in flag_counts:
                flag_counts[bit] += int(((batch["flag"] & bit) > 0).sum())
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
            else:  # FITS cannot be appended row-wise; the per-object table is small
                parts.append(table)
            bar.update(len(rows))
        bar.close()
        if writer is not None:
            writer.close()
        if suffix == ".fits":
            _write_fits(tmp, pa.concat_tables(parts) if parts else None, autoencoder.n_latent)
        elif writer is None:
            raise SpecsiftInputError("no objects selected: nothing to encode")
    for bit, count in flag_counts.items():
        if count:
            logger.warning("%d objects flagged: %s (FLAG & %d)", count, FLAG_NAMES[bit], bit)
    logger.info("wrote %s (%d objects)", args.out, n_total)
    return 0


def _write_fits(path, table, n_latent: int) -> None:
    from astropy.table import Table

    if table is None:
        raise SpecsiftInputError("no objects selected: nothing to encode")
    columns = {}
    for name in table.column_names:
        values = table.column(name).combine_chunks()
        if name == "LATENTS":
            columns[name] = values.values.to_numpy().reshape(-1, n_latent)
        else:
            columns[name] = values.to_numpy(zero_copy_only=False)
    Table(columns).write(path, format="fits", overwrite=True)
