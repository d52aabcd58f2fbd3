"""Figures of the RSCA experiments (one function per figure; each writes a PNG atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path

__all__ = ["plot_top_n", "plot_rate_vs_k", "plot_representations", "plot_training_clusters",
           "plot_plates", "plot_distance_histograms", "plot_ism_residual", "draw_report"]


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def plot_top_n(rows, path) -> Path:
    fig, ax = _figure(figsize=(5, 3.5))
    ax.plot([r["n_dims"] for r in rows], [r["loco_rate"] for r in rows], "o-")
    ax.set(xlabel="top-N RSCA dimensions kept", ylabel="doppelganger rate (LOCO)")
    return _save(fig, path)


def plot_rate_vs_k(rows, path) -> Path:
    fig, ax = _figure(figsize=(5, 3.5))
    ks = [r["k"] for r in rows]
    ax.plot(ks, [r["loco_rate"] for r in rows], "o-", label="leave-one-cluster-out")
    ax.plot(ks, [r["no_cv_rate"] for r in rows], "s--", label="no cross-validation")
    ax.set(xlabel="PPCA dimensions K", ylabel="doppelganger rate")
    ax.legend()
    return _save(fig, path)


def plot_representations(rows, path) -> Path:
    fig, ax = _figure(figsize=(6, 3.5))
    stages = ("raw", "scaled", "rsca")
    x = np.arange(len(rows))
    for i, stage in enumerate(stages):
        ax.bar(x + (i - 1) * 0.27, [r[stage] for r in rows], 0.27, label=stage)
    ax.set_xticks(x, [r["input"].replace("_", "\n") for r in rows], fontsize=8)
    ax.set(ylabel="doppelganger rate")
    ax.legend()
    return _save(fig, path)


def plot_training_clusters(rows, path) -> Path:
    fig, ax = _figure(figsize=(5, 3.5))
    ax.errorbar([r["n_training_clusters"] for r in rows], [r["mean_rate"] for r in rows],
                yerr=[r["std_rate"] for r in rows], fmt="o-", capsize=3)
    ax.set(xlabel="number of training clusters", ylabel="expected doppelganger rate")
    return _save(fig, path)


def plot_plates(rows, path) -> Path:
    """Appendix C: the plate checks of each recipe (1 = the metric does not see the plate)."""
    fig, ax = _figure(figsize=(5, 3.5))
    keys = ("same_plate_sibling_ratio", "same_vs_other_plate_field_rate")
    x = np.arange(len(keys))
    for i, row in enumerate(rows):
        ax.bar(x + (i - 0.5) * 0.4, [row[k] for k in keys], 0.4, label=row["recipe"])
    ax.axhline(1.0, color="k", ls=":")
    ax.set_xticks(x, ["siblings: one plate /\ntwo plates", "field: member's plate /\nother plates"],
                  fontsize=8)
    ax.set(ylabel="ratio")
    ax.legend()
    return _save(fig, path)


def plot_distance_histograms(distances: dict, rates: dict, path) -> Path:
    names = sorted(distances)
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = _figure(rows, cols, figsize=(3 * cols, 2.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        sibling, field = distances[name]
        bins = np.linspace(0, np.quantile(np.concatenate([sibling, field]), 0.99), 30)
        for values, style in ((field, {"alpha": 0.5, "label": "field"}),
                              (sibling, {"histtype": "step", "lw": 2, "label": "siblings"})):
            inside = values[values <= bins[-1]]
            if len(inside):
                ax.hist(inside, bins, density=True, **style)
        ax.axvline(np.median(sibling), color="k", ls=":")
        ax.set_title(f"{name} ({rates[name]:.3f})", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    return _save(fig, path)


def plot_ism_residual(found, path) -> Path:
    fig, ax = _figure(figsize=(9, 3))
    ax.plot(found.wave, found.residual, lw=0.5, color="k")
    ax.axhline(found.threshold, color="r", ls="--", lw=0.8)
    for lo, hi in found.windows:
        ax.axvspan(lo, hi, color="orange", alpha=0.4)
    ax.set(xlabel="vacuum wavelength (A)", ylabel="mean residual, high A_K")
    return _save(fig, path)


def draw_report(figures: dict) -> list[Path]:
    """Draw the figures of :func:`specsift.metric.experiments.run_report` (its ``figures``)."""
    draw = {"table1": lambda f: plot_top_n(f["rows"], f["path"]),
            "fig2": lambda f: plot_rate_vs_k(f["rows"], f["path"]),
            "fig4": lambda f: plot_representations(f["rows"], f["path"]),
            "fig5": lambda f: plot_training_clusters(f["rows"], f["path"]),
            "fig8": lambda f: plot_plates(f["rows"], f["path"]),
            "fig9": lambda f: plot_distance_histograms(f["distances"], f["rates"], f["path"]),
            "appendix_a": lambda f: plot_ism_residual(f["found"], f["path"])}
    return [draw[name](figure) for name, figure in figures.items()]
