"""``specsift ingest``: survey files -> a preprocessed, chunked on-disk store."""

from __future__ import annotations

import argparse
import logging

__all__ = ["register", "run"]

logger = logging.getLogger("specsift")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest", help="read survey files into a preprocessed on-disk store",
        description="Read survey files file by file, apply quality checks, sample cuts, masks, "
                    "normalisation and the train/validation/test split, and write a chunked "
                    "store. Rerunning the same command resumes an interrupted ingest and is a "
                    "no-op on a finished one. Exit status 2 if any input file was unreadable "
                    "(the others are ingested).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="survey files, folders or glob patterns")
    parser.add_argument("--out", required=True, help="store folder to create or resume")
    parser.add_argument("--survey", required=True, choices=("desi", "sdss", "apogee", "lamost"))
    parser.add_argument("--sample", default="all",
                        help="sample whose cuts apply (desi: bgs, mws, all; or one from --config)")
    parser.add_argument("--config", default=None,
                        help="TOML or JSON file overriding the preprocessing defaults")
    parser.add_argument("--chunk-rows", type=int, default=256,
                        help="objects per stored chunk (unit of reading and shuffling)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an existing store at --out first")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..preprocess import load_config
    from ..store import ingest

    config = load_config(args.config, args.survey)
    try:
        report = ingest(args.inputs, args.out, survey=args.survey, sample=args.sample,
                        config=config, chunk_rows=args.chunk_rows, overwrite=args.overwrite)
    except OSError as exc:  # unreadable inputs are handled per file; this is the store side
        logger.error("cannot write the store %s: %s", args.out, exc)
        return 2
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
