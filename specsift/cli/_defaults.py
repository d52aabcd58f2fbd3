"""Defaults live in one signature, the library's; the CLI reads them from there."""

from __future__ import annotations

import inspect

__all__ = ["default_of"]


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
