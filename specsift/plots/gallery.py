"""The outlier gallery: one figure per top-ranked object (like Fig. 3 of Liang et al. 2023) and
one static HTML page listing them in rank order with their catalogue rows.

A reviewer decides in seconds whether an outlier is a blend, a broken arm or a new kind of
object, so each figure shows the whole spectrum, its galaxy-model reconstruction, the masked
pixels (greyed) and zooms on the lines that tell these cases apart. The drawing itself reuses
:func:`specsift.plots.reconstruction.plot_spectrum_with_zooms`.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np

from .reconstruction import ZOOM_LINES, plot_spectrum_with_zooms

__all__ = ["GALLERY_LINES", "outlier_figure", "write_gallery"]

logger = logging.getLogger("specsift.plots")

#: zoom windows of the gallery: (label, rest-frame centre, rest half width), Angstrom (vacuum)
GALLERY_LINES: list[tuple[str, float, float]] = [
    ZOOM_LINES[0],                      # [O II] 3727
    ZOOM_LINES[1],                      # H-beta + [O III] 4861/5007
    ("Mg b 5175", 5177.0, 45.0),
    ("Na D 5893", 5895.0, 40.0),
    ZOOM_LINES[2],                      # H-alpha + [N II] 6563
]


def outlier_figure(entry: dict):
    """Figure of one outlier: ``entry`` holds wave, flux, model, mask, z, id, rank, chi2, score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.6))
    grid = fig.add_gridspec(2, len(GALLERY_LINES), height_ratios=[1.5, 1], hspace=0.45,
                            wspace=0.3)
    ax = fig.add_subplot(grid[0, :])
    zooms = [fig.add_subplot(grid[1, k]) for k in range(len(GALLERY_LINES))]
    plot_spectrum_with_zooms(ax, zooms, entry["wave"], entry["flux"], entry["model"],
                             entry["mask"], entry["z"], GALLERY_LINES)
    ax.plot([], [], " ", label=f"ID {entry['id']}")
    ax.plot([], [], " ", label=f"z = {entry['z']:.4f}")
    ax.plot([], [], " ", label=f"reduced $\\chi^2$ = {entry['chi2']:.2f}")
    ax.plot([], [], " ", label=f"$-\\log p$ = {entry['score']:.2f}")
    # the helper scales to the model; an outlier's data can lie far from it, so show both
    shown = np.concatenate([np.asarray(entry["flux"])[~np.asarray(entry["mask"])],
                            np.asarray(entry["model"])])
    lo, hi = np.nanpercentile(shown, [0.5, 99.5]) if shown.size else (0.0, 1.0)
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-6), hi + 0.1 * (hi - lo + 1e-6))
    ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=6, frameon=False)
    ax.set_title(f"rank {entry['rank']}", fontsize=9, loc="left")
    ax.set_xlabel("observed wavelength [$\\AA$]", fontsize=8)
    ax.set_ylabel("normalised flux", fontsize=8)
    ax.tick_params(labelsize=7)
    return fig


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.5g}"
    if isinstance(value, np.ndarray):
        shown = ", ".join(_cell(v) for v in value.ravel()[:8])
        return f"[{shown}{', ...' if value.size > 8 else ''}]"
    return html.escape(str(value))


def _page(title: str, rows: list[tuple[str, dict]]) -> str:
    """One HTML page: per outlier, its figure and its catalogue row as a two-line table."""
    blocks = []
    for image, record in rows:
        head = "".join(f"<th>{html.escape(k)}</th>" for k in record)
        body = "".join(f"<td>{_cell(v)}</td>" for v in record.values())
        rank, target = record["RANK"], html.escape(str(record["TARGETID"]))
        blocks.append(f'<section id="rank-{rank}">\n<h2>Rank {rank}: {target}</h2>\n'
                      f'<img src="{html.escape(image)}" alt="spectrum of rank {rank}" '
                      f'width="1000">\n<div class="row"><table><tr>{head}</tr><tr>{body}</tr>'
                      "</table></div>\n</section>")
    style = ("body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;"
             "font-size:11px}td,th{border:1px solid #ccc;padding:2px 5px;white-space:nowrap}"
             ".row{overflow-x:auto;margin-bottom:2em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{style}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"<p>{len(rows)} objects, most unusual first (OUTLIER_SCORE = -log p under the galaxy "
            "model). Grey bands: masked pixels; red: galaxy-model reconstruction.</p>\n"
            + "\n".join(blocks) + "\n</body></html>\n")


def write_gallery(out: str | Path, entries: list[dict], records: list[dict],
                  title: str = "specsift outlier gallery") -> Path:
    """Write one PNG per entry and ``index.html`` listing them in the order given.

    Arguments:
        out: output folder (created).
        entries: figure inputs (see :func:`outlier_figure`), in rank order.
        records: the matching catalogue rows (column name -> value), same order.
    """
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    listed = []
    for entry, record in zip(entries, records, strict=True):
        name = f"rank{entry['rank']:05d}_{entry['id']}.png"
        fig = outlier_figure(entry)
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
        plt.close(fig)
        listed.append((name, record))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(_page(title, listed))
    logger.info("gallery of %d outliers written to %s", len(listed), out / "index.html")
    return out / "index.html"
