"""Chemical similarity: PPCA with missing pixels, RSCA metric learning, doppelganger rates.

See de Mijolla & Ness (2022, ApJ 926, 193; arXiv:2110.02250) and ``docs/rsca.md``.
"""

from .doppelganger import DoppelgangerResult, doppelganger_rate, loco_evaluate
from .ppca import PPCA, WeightedPPCA
from .rsca import RSCA, LatentMetric

__all__ = ["PPCA", "WeightedPPCA", "RSCA", "LatentMetric", "doppelganger_rate", "loco_evaluate",
           "DoppelgangerResult"]
