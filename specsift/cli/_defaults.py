"""Defaults live in one signature, the library's; the CLI reads them from there."""

from __future__ import annotations

import inspect

__all__ = ["default_of", "add_device_option"]


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
