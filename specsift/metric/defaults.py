"""RSCA's defaults, written once: :func:`~specsift.metric.fitting.fit_rsca`,
:func:`~specsift.metric.experiments.run_report` and ``specsift rsca`` read them here, in a module
that imports no torch."""

__all__ = ["N_COMPONENTS", "ISM_WINDOWS"]

#: PPCA dimensions K (the paper's 30).
N_COMPONENTS = 30
#: "detect": censor the interstellar windows found in the residuals of high-extinction stars.
ISM_WINDOWS = "detect"
