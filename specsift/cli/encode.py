"""``specsift encode``: latents, reconstruction chi-square and flags for every object of a store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import SpecsiftInputError
from ..preprocess.split import SPLITS
from ._defaults import add_batch_size_option, add_device_option

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
    add_batch_size_option(parser)
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from astropy.table import Table

    from ..models.inference import encode_batches
    from ..models.inputs import FLAG_NAMES
    from ..models.modeldir import ModelDir
    from ..runtime import progress, resolve_device
    from ..store import SpectraStore
    from ..store.tables import TableStream

    if args.out.suffix.lower() not in TableStream.FORMATS:
        raise SpecsiftInputError(f"{args.out}: output must end in .parquet or .fits")
    device = resolve_device(args.device)
    store = SpectraStore(args.store)
    autoencoder = ModelDir(args.model).load_autoencoder(device=device)
    meta = store.meta
    columns = {name: np.asarray(meta[name]) for name in ("ID", "SPLIT", "Z", "NORM")}
    n_total = len(store) if args.split is None else int((columns["SPLIT"] == args.split).sum())
    if not n_total:
        raise SpecsiftInputError("no objects selected: nothing to encode")
    flag_counts = dict.fromkeys(FLAG_NAMES, 0)
    with TableStream(args.out) as out:
        bar = progress(total=n_total, desc="encode", unit="spectra")
        for batch in encode_batches(autoencoder, store, batch_size=args.batch_size,
                                    split=args.split, device=device):
            rows = batch["row"]
            out.write(Table({**{name: values[rows] for name, values in columns.items()},
                             "LATENTS": batch["latents"].astype(np.float32),
                             "CHI2": batch["chi2"].astype(np.float32),
                             "N_GOOD": batch["n_good"].astype(np.int32),
                             "FLAG": batch["flag"].astype(np.int32),
                             "ROW": rows.astype(np.int64)}))
            for bit in flag_counts:
                flag_counts[bit] += int(((batch["flag"] & bit) > 0).sum())
            bar.update(len(rows))
        bar.close()
    for bit, count in flag_counts.items():
        if count:
            logger.warning("%d objects flagged: %s (FLAG & %d)", count, FLAG_NAMES[bit], bit)
    logger.info("wrote %s (%d objects)", args.out, n_total)
    return 0
