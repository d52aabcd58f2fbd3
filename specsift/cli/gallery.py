"""``specsift gallery``: figures and an HTML page of the top-ranked outliers of a catalogue."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register", "gallery_entries"]

logger = logging.getLogger("specsift.plots")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gallery", help="draw the top outliers of a catalogue (PNG + index.html)",
        description="Draw the TOP highest-ranked objects of CATALOG: observed spectrum with its "
                    "galaxy-model reconstruction, masked pixels greyed, zooms on [O II], "
                    "H-beta/[O III], Mg b, Na D and H-alpha/[N II]; plus index.html listing "
                    "them in rank order with their catalogue rows. The store and the galaxy "
                    "model default to the paths recorded in the catalogue by `specsift score`.")
    parser.add_argument("catalog", type=Path, help="catalogue written by `specsift score`")
    parser.add_argument("--top", type=int, default=50, help="how many outliers (50)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--store", type=Path, default=None, help="store (default: from catalogue)")
    parser.add_argument("--galaxy-model", type=Path, default=None,
                        help="galaxy model directory (default: from catalogue)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def gallery_entries(table, store, autoencoder, device: str) -> list[dict]:
    """Figure inputs for the catalogue rows ``table`` (in their order): spectra + reconstruction."""
    import numpy as np

    from ..models.inference import encode_batches

    rows = np.asarray(table["STORE_ROW"], dtype=np.int64)
    wanted = np.unique(rows)
    data = {}
    batches = zip(store.batches(batch_size=256, rows=wanted),
                  encode_batches(autoencoder, store, batch_size=256, rows=wanted, device=device,
                                 return_model=True))
    for batch, encoded in batches:
        for i, row in enumerate(batch["row"]):
            data[int(row)] = (batch["flux"][i], batch["ivar"][i], encoded["model"][i])
    entries = []
    for k, row in enumerate(rows):
        flux, ivar, model = data[int(row)]
        entries.append({"wave": store.wave, "flux": flux, "model": model, "mask": ~(ivar > 0),
                        "z": float(table["Z"][k]), "id": table["TARGETID"][k],
                        "rank": int(table["RANK"][k]), "chi2": float(table["CHI2_GALAXY"][k]),
                        "score": float(table["OUTLIER_SCORE"][k])})
    return entries


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..catalog import read_catalog
    from ..errors import SpecsiftInputError
    from ..models.modeldir import ModelDir
    from ..plots.gallery import write_gallery
    from ..runtime import resolve_device
    from ..store import SpectraStore

    if args.top < 1:
        raise ValueError("--top must be at least 1")
    table, metadata = read_catalog(args.catalog)
    store_path = args.store or metadata.get("STORE")
    model_path = args.galaxy_model or metadata.get("GALMODEL")
    if not store_path or not model_path:
        raise SpecsiftInputError("the catalogue records no store / galaxy model; pass --store and "
                                 "--galaxy-model", path=args.catalog)
    for name in ("RANK", "STORE_ROW", "TARGETID", "Z", "CHI2_GALAXY", "OUTLIER_SCORE"):
        if name not in table.colnames:
            raise SpecsiftInputError(f"catalogue has no {name} column; was it written by "
                                     "`specsift score`?", path=args.catalog)
    top = table[np.argsort(np.asarray(table["RANK"]))[:args.top]]
    top = top[np.isfinite(np.asarray(top["OUTLIER_SCORE"], dtype=float))]
    device = str(resolve_device(args.device))
    store = SpectraStore(store_path)
    autoencoder = ModelDir(model_path).load_autoencoder(device=device)
    entries = gallery_entries(top, store, autoencoder, device)
    records = [{name: top[name][k] for name in top.colnames} for k in range(len(top))]
    write_gallery(args.out, entries, records, title=f"specsift outliers: {args.catalog.name}")
    return 0
