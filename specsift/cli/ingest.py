"""``specsift ingest``: survey files -> a preprocessed, chunked on-disk store."""

from __future__ import annotations

import argparse
import logging

from ._defaults import default_of

__all__ = ["register", "run"]

logger = logging.getLogger("specsift")


def register(subparsers) -> None:
    from ..io import SURVEYS
    from ..store.build import SCHEDULERS, ingest

    parser = subparsers.add_parser(
        "ingest", help="read survey files into a preprocessed on-disk store",
        description="Read survey files file by file, apply quality checks, sample cuts, masks, "
                    "normalisation and the train/validation/test split, and write a chunked "
                    "store. Rerunning the same command resumes an interrupted ingest and is a "
                    "no-op on a finished one; a second ingest into a store being written stops "
                    "with a message. Exit status 2 if any input file was unreadable (the others "
                    "are ingested).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="survey files, folders or glob patterns")
    parser.add_argument("--out", required=True, help="store folder to create or resume")
    parser.add_argument("--survey", required=True, choices=SURVEYS)
    parser.add_argument("--sample", default=default_of(ingest, "sample"),
                        help="sample whose cuts apply (desi: bgs, mws, all; or one from --config)")
    parser.add_argument("--config", default=None,
                        help="TOML or JSON file overriding the preprocessing defaults")
    parser.add_argument("--chunk-rows", type=int, default=default_of(ingest, "chunk_rows"),
                        help="objects per stored chunk (unit of reading and shuffling)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an existing store at --out first")
    parser.add_argument("--workers", type=int, default=default_of(ingest, "workers"),
                        help="input files ingested at once (local processes, or Dask workers)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=default_of(ingest, "scheduler"),
                        help="none: local processes; dask: a local Dask cluster of --workers "
                             "processes, or the cluster at --dask-address")
    parser.add_argument("--dask-address", default=None,
                        help="scheduler address of an existing Dask cluster (tcp://host:8786); "
                             "its workers must see the inputs and --out")
    parser.set_defaults(func=run, outputs=("out",))


def run(args) -> int:
    from ..preprocess import load_config
    from ..store import ingest

    config = load_config(args.config, args.survey)
    report = ingest(args.inputs, args.out, survey=args.survey, sample=args.sample,
                    config=config, chunk_rows=args.chunk_rows, overwrite=args.overwrite,
                    workers=args.workers, scheduler=args.scheduler, address=args.dask_address)
    logger.info("store %s: %d read, %d ingested, %d rejected (%d files ingested, %d already "
                "done)", args.out, report.n_read, report.n_ingested, report.n_rejected,
                len(report.files_ingested), len(report.files_skipped))
    if report.failed:
        for problem in report.failed.values():
            logger.error("not ingested: %s", problem)
        logger.error("%d input file(s) could not be ingested; fix or remove them and rerun",
                     len(report.failed))
        return 2
    return 0
