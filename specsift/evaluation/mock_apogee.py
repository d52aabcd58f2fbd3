"""An RSCA model against the oracle of a mock APOGEE set (``truth.fits``, evaluation only).

The oracle is the doppelganger rate of the mock's TRUE abundances on the very samples the
model is evaluated on: no representation learnt from noisy spectra can be expected to beat it,
so an RSCA rate close to it means the metric learnt what the spectra can tell.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["oracle_rate"]


def oracle_rate(model: str | Path, allstar, occam, spectra, truth):
    """Doppelganger rate (no cross-validation: nothing is trained) of the true abundances of the
    field and member samples that the RSCA model folder ``model`` is evaluated on (its
    sample config and censoring, as ``specsift rsca evaluate``). Returns the
    :class:`~specsift.metric.doppelganger.DoppelgangerResult`."""
    from ..metric.experiments import plain_rate, true_abundances
    from ..metric.fitting import evaluation_data
    from ..models.modeldir import ModelDir

    config = ModelDir(model).config
    data = evaluation_data(config, allstar, occam, spectra)
    return plain_rate(*true_abundances(truth, allstar, data.samples), data)
