"""The ``specsift`` command: finds the verb modules of this package and dispatches to them.

Each verb module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable taking the parsed arguments and returning an exit code (and, optionally, ``outputs``:
the names of the arguments it writes to, ``("out",)`` when not set). Heavy imports (torch)
happen inside those callables so that ``specsift --help`` stays quick.

Errors: bad input (:class:`~specsift.errors.SpecsiftInputError`) and files that cannot be read
or written (``OSError``) are one line and exit status 2; ``-v`` adds their traceback. Anything
else is a bug and shows its traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from .. import __version__
from ..atomic import check_writable
from ..errors import SpecsiftInputError
from ..runtime import configure_logging

__all__ = ["build_parser", "main", "describe_os_error"]

logger = logging.getLogger("specsift")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specsift",
        description="Find unusual objects (autoencoder + flow outlier search) and chemical "
                    "siblings (RSCA) in spectroscopic surveys.")
    parser.add_argument("--version", action="version", version=f"specsift {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output, and the traceback of every error")
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


def describe_os_error(error: OSError) -> str:
    """``PATH: problem`` for an OSError, the way SpecsiftInputError names its file.

    Example:
        >>> describe_os_error(PermissionError(13, "Permission denied", "/data/out.parquet"))
        'cannot access /data/out.parquet: Permission denied'
    """
    if error.filename is None or not error.strerror:
        return str(error)
    where = str(error.filename)
    if error.filename2 is not None:
        where += f" -> {error.filename2}"
    return f"cannot access {where}: {error.strerror}"


def _check_outputs(args) -> None:
    """Fail before any work if an output of the verb cannot be written."""
    for name in getattr(args, "outputs", ("out",)):
        value = getattr(args, name, None)
        if value is not None:
            check_writable(value)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        _check_outputs(args)
        return int(args.func(args) or 0)
    except SpecsiftInputError as error:
        logger.error("bad input: %s", error, exc_info=args.verbose > 0)
        return 2
    except OSError as error:
        logger.error("%s", describe_os_error(error), exc_info=args.verbose > 0)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted; rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
