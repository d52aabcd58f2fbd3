"""``specsift score``: the outlier catalogue of a store, from a galaxy and a star model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from ._defaults import add_batch_size_option, add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.catalog")


def register(subparsers) -> None:
    from ..catalog.classify import RULES
    from ..catalog.distributed import SCHEDULERS

    parser = subparsers.add_parser(
        "score", help="score every object of a store: outlier catalogue with star/galaxy classes",
        description="Stream every object of STORE through the galaxy and the star models "
                    "(autoencoder + flow) and write one row per object: TARGETID, Z, CHI2_GALAXY, "
                    "CHI2_STAR, LOGP_GALAXY, LOGP_STAR, OUTLIER_SCORE (-log10 of the strongest "
                    "tail probability under the galaxy model; see docs/catalog.md), RANK "
                    "(1 = most unusual), OUTLIER_PVALUE, OUTLIER_QVALUE, OUTLIER_REASON, IS_STAR "
                    "and the survey metadata. Parquet, or FITS when the name ends in .fits. "
                    "Written atomically; rerun a killed run to resume.")
    parser.add_argument("store", type=Path, help="ingested store to score (e.g. --sample all)")
    parser.add_argument("--galaxy-model", type=Path, required=True, help="galaxy model directory")
    parser.add_argument("--star-model", type=Path, required=True, help="star model directory")
    parser.add_argument("--out", type=Path, required=True, help="CATALOG.parquet or CATALOG.fits")
    add_device_option(parser)
    add_batch_size_option(parser)
    parser.add_argument("--chunk-size", type=int, default=8192,
                        help="objects per resumable part file / work unit (8192)")
    parser.add_argument("--workers", type=int, default=1, help="Dask workers (scheduler dask)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="none",
                        help="none: this process; dask: a local Dask cluster of --workers "
                             "processes (or --dask-address); accelerate: run under `accelerate "
                             "launch --num_processes N`, one process per GPU")
    parser.add_argument("--dask-address", default=None,
                        help="scheduler address of an existing Dask cluster (tcp://host:8786)")
    parser.add_argument("--star-rule", choices=sorted(RULES), default="chi2",
                        help="star/galaxy likelihood ratio (default chi2; see docs/catalog.md)")
    parser.add_argument("--star-threshold", type=float, default=0.0,
                        help="log likelihood ratio above which an object is a star "
                             "(0: equal priors)")
    parser.add_argument("--fdr", type=float, default=None, metavar="Q",
                        help="also write the objects with OUTLIER_QVALUE < Q (a false-discovery "
                             "rate, e.g. 0.05) to CATALOG.qQ.parquet, in rank order")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import ScoreJob, StarGalaxyRule, score_catalog
    from ..catalog.distributed import check_fdr
    from ..errors import SpecsiftInputError
    from ..runtime import keep_freed_memory

    check_fdr(args.fdr)
    keep_freed_memory()
    for name in ("store", "galaxy_model", "star_model"):
        if not getattr(args, name).exists():
            raise FileNotFoundError(f"{getattr(args, name)}: no such {name.replace('_', ' ')}")
    if args.workers < 1 or args.batch_size < 1 or args.chunk_size < 1:
        raise SpecsiftInputError("--workers, --batch-size and --chunk-size must be positive")
    if args.workers > 1 and args.scheduler != "dask":
        raise SpecsiftInputError("--workers sets the Dask workers: add --scheduler dask (with accelerate, "
                         "the process count is given to `accelerate launch --num_processes`)")
    job = ScoreJob(store=str(args.store), galaxy_model=str(args.galaxy_model),
                   star_model=str(args.star_model), out=str(args.out), batch_size=args.batch_size,
                   chunk_size=args.chunk_size, device=args.device,
                   torch_threads=1 if args.scheduler == "dask" else 0)
    out = score_catalog(job, workers=args.workers, scheduler=args.scheduler,
                        rule=StarGalaxyRule(args.star_rule, args.star_threshold),
                        address=args.dask_address, fdr=args.fdr)
    if out is not None:
        logger.info("catalogue written to %s", out)
    return 0
