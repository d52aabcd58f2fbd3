"""``specsift gallery``: figures and an HTML page of the top-ranked outliers of a catalogue."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from ._defaults import add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.plots")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gallery", help="draw the top outliers of a catalogue (PNG + index.html)",
        description="Draw the TOP highest-ranked objects of CATALOG: observed spectrum with its "
                    "galaxy-model reconstruction (and the star model's, for objects classified "
                    "as stars), masked pixels greyed, a panel of residual significance, zooms on "
                    "[O II], H-beta/[O III], Mg b, Na D and H-alpha/[N II], and the reason it was "
                    "ranked; plus index.html, which sorts by any column and hides stars in the "
                    "browser. The store and the models default to the paths recorded in the "
                    "catalogue by `specsift score`.")
    parser.add_argument("catalog", type=Path, help="catalogue written by `specsift score`")
    parser.add_argument("--top", type=int, default=50, help="how many outliers (50)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--store", type=Path, default=None, help="store (default: from catalogue)")
    parser.add_argument("--galaxy-model", type=Path, default=None,
                        help="galaxy model directory (default: from catalogue)")
    parser.add_argument("--star-model", type=Path, default=None,
                        help="star model directory (default: from catalogue)")
    parser.add_argument("--hide-stars", action="store_true",
                        help="leave out the objects classified as stars (the page can also "
                             "hide them)")
    parser.add_argument("--sample", default=None, metavar="NAME",
                        help="only objects of this ingest sample (e.g. bgs: the galaxy sample "
                             "the paper's gallery shows), by the sample's cuts on the catalogue "
                             "columns, as the store was ingested (default: every object)")
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import read_catalog
    from ..catalog.samples import in_sample, sample_config
    from ..errors import SpecsiftInputError
    from ..plots.gallery import write_gallery
    from ..plots.records import open_sources, ranked_rows, spectrum_records
    from ..runtime import resolve_device

    if args.top < 1:
        raise SpecsiftInputError("--top must be at least 1")
    table, metadata = read_catalog(args.catalog)
    keep = None
    if args.sample:
        keep = in_sample(table, args.sample, sample_config(metadata, args.store), args.catalog)
        logger.info("sample %s: %d of %d objects", args.sample, keep.sum(), len(table))
    top = ranked_rows(table, args.top, order="RANK", hide_stars=args.hide_stars,
                      path=args.catalog, keep=keep)
    if args.sample and not len(top):
        raise SpecsiftInputError(f"no scored object of sample {args.sample!r} to draw",
                                 path=args.catalog)
    device = str(resolve_device(args.device))
    store, galaxy, star = open_sources(metadata, args.store, args.galaxy_model, args.star_model,
                                       device=device, catalog=args.catalog)
    records = spectrum_records(store, top["STORE_ROW"], galaxy, star, device=device)
    rows = [{name: top[name][k] for name in top.colnames} for k in range(len(top))]
    title = f"specsift outliers: {args.catalog.name}" + (f", sample {args.sample}"
                                                          if args.sample else "")
    write_gallery(args.out, records, rows, title=title)
    return 0
