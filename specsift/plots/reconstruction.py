"""Spectra with their autoencoder models and zooms on strong lines (like Fig. 2 of Liang et al. 2023).

The drawing helpers (:func:`plot_spectrum_with_zooms`, :func:`shade_masked`) take plain arrays and
existing axes, so other figures (the outlier gallery) reuse them with their own layouts.
"""

from __future__ import annotations

import numpy as np
from ..runtime import DEFAULT_DEVICE

__all__ = ["ZOOM_LINES", "mask_runs", "shade_masked", "plot_spectrum_with_zooms",
           "reconstruction_figure", "save_reconstruction_figure"]

#: (label, rest-frame centre, rest-frame half width) of the zoom windows, Angstrom (vacuum).
ZOOM_LINES: list[tuple[str, float, float]] = [
    ("[O II] 3727", 3728.5, 35.0),
    ("H$\\beta$ + [O III]", 4935.0, 110.0),
    ("H$\\alpha$ + [N II]", 6565.0, 60.0),
]


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` index pairs of the runs of True in a 1-D bool array."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def shade_masked(ax, wave: np.ndarray, mask: np.ndarray, color: str = "0.85") -> None:
    """Grey vertical bands over the masked pixels (each run spans its pixels' full width)."""
    wave = np.asarray(wave, dtype=float)
    half = np.gradient(wave) / 2
    for start, stop in mask_runs(mask):
        ax.axvspan(wave[start] - half[start], wave[stop - 1] + half[stop - 1], color=color,
                   lw=0, zorder=0)


def _draw(ax, wave, flux, model, mask, sel=slice(None)):
    shade_masked(ax, wave[sel], mask[sel])
    shown = np.where(mask, np.nan, flux)
    ax.step(wave[sel], shown[sel], where="mid", color="0.45", lw=0.6, label="data")
    ax.plot(wave[sel], model[sel], color="C3", lw=1.0, label="model")


def plot_spectrum_with_zooms(ax_main, zoom_axes, wave, flux, model, mask, z: float,
                             lines: list[tuple[str, float, float]] | None = None) -> None:
    """Draw one spectrum and its model on ``ax_main`` and zooms on strong lines on ``zoom_axes``.

    Arguments:
        ax_main: axes for the whole observed spectrum.
        zoom_axes: one axes per entry of ``lines`` (fewer axes: the extra lines are skipped;
            a window that falls outside the observed range shows "not covered").
        wave, flux, model: (P,) observed wavelength, data and model.
        mask: (P,) bool, True where a pixel is masked (greyed, data not drawn).
        z: redshift, to place the rest-frame zoom windows.
        lines: ``(label, rest centre, rest half width)``; default :data:`ZOOM_LINES`.
    """
    wave, flux, model = (np.asarray(a, dtype=float) for a in (wave, flux, model))
    mask = np.asarray(mask, dtype=bool)
    _draw(ax_main, wave, flux, model, mask)
    good = model[~mask] if (~mask).any() else model
    lo, hi = np.nanpercentile(good, [0.5, 99.5])
    pad = 0.3 * (hi - lo + 1e-6)
    ax_main.set_ylim(lo - pad, hi + pad)
    ax_main.set_xlim(wave[0], wave[-1])
    for ax, (label, centre, width) in zip(zoom_axes, lines or ZOOM_LINES):
        lo_w, hi_w = (centre - width) * (1 + z), (centre + width) * (1 + z)
        sel = (wave >= lo_w) & (wave <= hi_w)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=7)
        if sel.sum() < 2:
            ax.text(0.5, 0.5, "not covered", ha="center", va="center", transform=ax.transAxes,
                    fontsize=8, color="0.5")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        _draw(ax, wave, flux, model, mask, sel)
        ax.set_xlim(lo_w, hi_w)
        ax_main.axvspan(lo_w, hi_w, color="C0", alpha=0.08, lw=0)


def reconstruction_figure(spectra: list[dict], lines=None):
    """A figure with one block per spectrum: full spectrum on top, line zooms below.

    ``spectra`` items hold ``wave``, ``flux``, ``model``, ``mask``, ``z`` and a ``title``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = lines or ZOOM_LINES
    n = len(spectra)
    fig = plt.figure(figsize=(10, 3.6 * n))
    grid = fig.add_gridspec(2 * n, len(lines), height_ratios=[1.4, 1] * n, hspace=0.55, wspace=0.25)
    for i, spec in enumerate(spectra):
        ax = fig.add_subplot(grid[2 * i, :])
        zooms = [fig.add_subplot(grid[2 * i + 1, k]) for k in range(len(lines))]
        plot_spectrum_with_zooms(ax, zooms, spec["wave"], spec["flux"], spec["model"],
                                 spec["mask"], spec["z"], lines)
        ax.set_title(spec.get("title", ""), fontsize=9)
        ax.set_ylabel("normalised flux", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, loc="upper right")
    fig.axes[-1 - len(lines) // 2].set_xlabel("observed wavelength [$\\AA$]", fontsize=8)
    return fig


def save_reconstruction_figure(path, autoencoder, store, rows=None, n: int = 3, device=DEFAULT_DEVICE,
                               seed: int = 0) -> None:
    """Encode ``rows`` of ``store`` (default: ``n`` random test objects) and save the figure (PNG)."""
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path
    from .records import spectrum_records

    meta = store.meta
    if rows is None:
        pool = np.flatnonzero(np.asarray(meta["SPLIT"]) == "test")
        pool = pool if len(pool) else np.arange(len(store))
        rows = np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False)
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    spectra = [{**record, "model": record["model_galaxy"],
                "title": f"ID {meta['ID'][record['row']]}  z={record['z']:.3f}  reduced "
                         f"$\\chi^2$={record['chi2_galaxy']:.2f}"}
               for record in spectrum_records(store, rows, autoencoder, device=device,
                                              batch_size=len(rows))]
    fig = reconstruction_figure(spectra)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)
