"""The ``specsift`` command: finds the verb modules of this package and dispatches to them.

Each verb module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code. Heavy imports (torch, astropy)
happen inside those callables so that ``specsift --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from .. import __version__
from ..errors import SpecsiftInputError
from ..runtime import configure_logging

__all__ = ["build_parser", "main"]

logger = logging.getLogger("specsift")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specsift",
        description="Find unusual objects (autoencoder + flow outlier search) and chemical "
                    "siblings (RSCA) in spectroscopic surveys.")
    parser.add_argument("--version", action="version", version=f"specsift {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        return int(args.func(args) or 0)
    except SpecsiftInputError as error:
        logger.error("bad input: %s", error)
        return 2
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        logger.error("%s", error)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted; rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
