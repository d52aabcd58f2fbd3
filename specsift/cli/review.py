"""``specsift review``: a self-contained page to review and label the top outliers."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from ._defaults import add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.plots")


def register(subparsers) -> None:
    from ..plots.review import review_catalog

    top = review_catalog.__defaults__[0]
    parser = subparsers.add_parser(
        "review", help="write a review page of the top outliers; label them in the browser",
        description="Write REVIEW_DIR/index.html (no network needed): the TOP objects of "
                    "CATALOG in rank order (REVIEW_RANK for a catalogue of `specsift rerank`), "
                    "each with its spectrum, galaxy model, star-model fit where it applies, "
                    "residual significance, catalogue row and reason. Keys i / n / a label an "
                    "object interesting / not interesting / artefact, e writes a note; labels "
                    "are kept in the browser and exported to labels.csv (TARGETID,label,note,"
                    "time), the input of `specsift rerank`. With --serve a local server on "
                    "127.0.0.1 writes each label straight to REVIEW_DIR/labels.csv.")
    parser.add_argument("catalog", type=Path, help="catalogue of `specsift score` or `rerank`")
    parser.add_argument("--out", type=Path, required=True, help="REVIEW_DIR")
    parser.add_argument("--top", type=int, default=top, help=f"how many objects ({top})")
    parser.add_argument("--order", choices=("RANK", "REVIEW_RANK"), default=None,
                        help="default: REVIEW_RANK when the catalogue has it, else RANK")
    parser.add_argument("--serve", action="store_true",
                        help="serve the page on 127.0.0.1 and write labels to labels.csv")
    parser.add_argument("--port", type=int, default=8765, help="--serve port (8765; 0 = any)")
    parser.add_argument("--store", type=Path, default=None, help="store (default: from catalogue)")
    parser.add_argument("--galaxy-model", type=Path, default=None)
    parser.add_argument("--star-model", type=Path, default=None)
    add_device_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog.labels import LabelBook, LabelServer
    from ..plots.review import review_catalog
    from ..runtime import resolve_device

    page = review_catalog(args.catalog, args.out, top=args.top, order=args.order,
                          store=args.store, galaxy_model=args.galaxy_model,
                          star_model=args.star_model, device=str(resolve_device(args.device)))
    logger.info("open %s", page["index"])
    if args.serve:
        book = LabelBook(page["labels_path"], page["fingerprint"], page["target_ids"])
        server = LabelServer(args.out, book, port=args.port)
        logger.info("serving %s (labels to %s); Ctrl-C stops", server.url, book.path)
        stop_on(signal.SIGINT, signal.SIGTERM)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            logger.info("stopped; %d labels in %s", len(book.labels), book.path)
        finally:
            server.httpd.server_close()
    return 0


def stop_on(*signals: signal.Signals) -> None:
    """Make these signals stop the server as Ctrl-C does. Why: a shell without job control
    (a script's ``cmd &``, CI) starts background commands with SIGINT ignored, and then
    neither Ctrl-C nor ``kill -INT`` would stop the server or report its labels."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for number in signals:
        signal.signal(number, interrupt)
