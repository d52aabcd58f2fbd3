"""``specsift rerank``: re-rank a catalogue from a reviewer's labels (relevance x outlier score)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers) -> None:
    from ..catalog.rerank import METHODS, rerank_catalog

    defaults = rerank_catalog.__defaults__
    parser = subparsers.add_parser(
        "rerank", help="re-rank a catalogue from review labels (labels.csv)",
        description="Learn from the labelled objects of CATALOG which directions of the "
                    "catalogue features (latents, residual features, reasons, fit scores) the "
                    "reviewer finds interesting, and combine that relevance with the "
                    "unsupervised score where the labels can be trusted (after Astronomaly; "
                    "docs/review.md gives the formula). Writes CATALOG_REVIEWED with RELEVANCE, "
                    "REVIEW_TRUST, REVIEW_SCORE, REVIEW_LABEL and REVIEW_RANK (1 = next to "
                    "review; labelled objects come last). Deterministic.")
    parser.add_argument("catalog", type=Path, help="catalogue written by `specsift score`")
    parser.add_argument("--labels", type=Path, required=True,
                        help="labels.csv of this catalogue (from `specsift review`)")
    parser.add_argument("--out", type=Path, required=True, help="the re-ranked catalogue")
    parser.add_argument("--method", choices=METHODS, default=defaults[0],
                        help="specsift: promote and demote (default); astronomaly: their "
                             "NeighbourScore combination, demote only")
    parser.add_argument("--penalty", type=float, default=defaults[1],
                        help=f"L2 strength of the relevance model ({defaults[1]})")
    parser.add_argument("--features", nargs="*", default=list(defaults[2]),
                        help="further numeric catalogue columns to learn from")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog.rerank import rerank_catalog
    from ..errors import SpecsiftInputError

    if args.out.resolve() == args.catalog.resolve():
        raise SpecsiftInputError("--out must be a new file, not the catalogue itself")
    rerank_catalog(args.catalog, args.labels, args.out, method=args.method,
                   penalty=args.penalty, extra=tuple(args.features))
    return 0
