"""Comparisons of specsift's outputs with the truth of a mock survey: evaluation only.

Nothing in the pipeline imports this package; the demo's evaluation step and the benchmarks do.

* :mod:`.metrics`: ranking metrics (ROC AUC, precision of the top of a ranking).
* :mod:`.mock_desi`: a catalogue against the truth file of a mock DESI survey.
* :mod:`.mock_apogee`: an RSCA model's doppelganger rate against the oracle of a mock APOGEE set.
* :mod:`.card`: the evaluation card that ``specsift demo`` prints and writes.
"""

from .metrics import roc_auc, top_count_precision, top_fraction_precision

__all__ = ["roc_auc", "top_count_precision", "top_fraction_precision"]
