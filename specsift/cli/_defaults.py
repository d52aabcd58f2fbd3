"""Defaults live in one signature, the library's; the CLI reads them from there."""

from __future__ import annotations

import inspect

__all__ = ["default_of", "add_device_option", "add_batch_size_option",
           "add_options_from"]


def default_of(func, name: str):
    """The default of parameter ``name`` of ``func`` (a function or a class's ``__init__``).

    Example:
        >>> def fit(data, seed: int = 0): ...
        >>> default_of(fit, "seed")
        0
    """
    value = inspect.signature(func).parameters[name].default
    if value is inspect.Parameter.empty:
        raise TypeError(f"{getattr(func, '__qualname__', func)} has no default for {name!r}")
    return value


def add_device_option(parser, what: str = "") -> None:
    """``--device``, the same for every command, defaulting to the library's
    :data:`~specsift.runtime.DEFAULT_DEVICE`."""
    from ..runtime import DEFAULT_DEVICE

    parser.add_argument("--device", default=DEFAULT_DEVICE,
                        help=f"torch device{what}: auto (GPU if present), cpu, cuda, cuda:N "
                             f"(default {DEFAULT_DEVICE})")


def add_batch_size_option(parser) -> None:
    """``--batch-size`` of the verbs that encode or score, defaulting to the library's
    :data:`~specsift.models.defaults.INFERENCE_BATCH`."""
    from ..models.defaults import INFERENCE_BATCH

    parser.add_argument("--batch-size", type=int, default=INFERENCE_BATCH,
                        help=f"spectra per model call ({INFERENCE_BATCH})")


def add_options_from(parser, defaults, helps: dict[str, str]) -> None:
    """One option per ``--flag: help`` of ``helps``, whose default and type are those of the
    same-named field of ``defaults`` (a dataclass instance); the help ends with the default.

    Example:
        >>> import argparse
        >>> from specsift.models.defaults import FLOW
        >>> parser = argparse.ArgumentParser()
        >>> add_options_from(parser, FLOW, {"--max-epochs": "most epochs", "--hidden": "widths"})
        >>> parser.parse_args([]).max_epochs, parser.parse_args(["--hidden", "8"]).hidden
        (300, [8])
    """
    for flag, text in helps.items():
        value = getattr(defaults, flag.lstrip("-").replace("-", "_"))
        if isinstance(value, tuple):  # a list option: "--hidden 64 64"
            parser.add_argument(flag, type=type(value[0]), nargs="+", default=list(value),
                                help=f"{text} ({' '.join(map(str, value))})")
        else:
            shown = f"{value:g}" if isinstance(value, float) else value
            parser.add_argument(flag, type=type(value), default=value, help=f"{text} ({shown})")
