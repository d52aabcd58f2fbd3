"""Chemical similarity: PPCA with missing pixels, RSCA metric learning, doppelganger rates.

See de Mijolla & Ness (2022, ApJ 926, 193; arXiv:2110.02250) and ``docs/rsca.md``.
The names below are imported on first use (PEP 562), so that the CLI can read
:mod:`.defaults` without loading torch.
"""

from importlib import import_module

_EXPORTS = {"PPCA": ".ppca", "WeightedPPCA": ".ppca", "RSCA": ".rsca", "LatentMetric": ".rsca",
            "doppelganger_rate": ".doppelganger", "loco_evaluate": ".doppelganger",
            "DoppelgangerResult": ".doppelganger"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
