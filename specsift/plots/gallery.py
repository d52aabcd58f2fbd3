"""The outlier gallery: one figure per top-ranked object (like Fig. 3 of Liang et al. 2023) and
one static HTML page listing them with their catalogue rows.

A reviewer decides in seconds whether an outlier is a blend, a broken arm or a new kind of
object, so each figure shows the whole spectrum, its galaxy-model reconstruction (and the star
model's, when the object is classified as a star), the masked pixels (greyed), a panel of
residual significance, zooms on the lines that tell these cases apart, and the reason it was
ranked in the legend. The drawing reuses
:func:`specsift.plots.reconstruction.plot_spectrum_with_zooms`; the inputs come from
:func:`specsift.plots.records.spectrum_records`.

``index.html`` needs no server: a small inline script sorts the objects by any catalogue column
(click a column head in the summary table) and hides the objects classified as stars.
"""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

import numpy as np

from .reconstruction import ZOOM_LINES, plot_spectrum_with_zooms

__all__ = ["GALLERY_LINES", "outlier_figure", "write_gallery", "safe_name"]

logger = logging.getLogger("specsift.plots")

#: zoom windows of the gallery: (label, rest-frame centre, rest half width), Angstrom (vacuum)
GALLERY_LINES: list[tuple[str, float, float]] = [
    ZOOM_LINES[0],                      # [O II] 3727
    ZOOM_LINES[1],                      # H-beta + [O III] 4861/5007
    ("Mg b 5175", 5177.0, 45.0),
    ("Na D 5893", 5895.0, 40.0),
    ZOOM_LINES[2],                      # H-alpha + [N II] 6563
]

#: residual significance shown, +- sigma
RESIDUAL_LIMIT = 10.0


def safe_name(text) -> str:
    """``text`` made safe as a file name: letters, digits, ``.``, ``_`` and ``-`` only (others
    become ``_``), no leading dot, at most 80 characters. An id such as ``x/../../a`` can then
    never name a file outside the gallery folder."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(text)).lstrip(".")[:80]
    return name or "object"


def _value(row: dict, name: str, default=None):
    value = row.get(name, default)
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    return default if np.ma.is_masked(value) else value


def outlier_figure(record: dict, row: dict):
    """Figure of one outlier.

    Arguments:
        record: :func:`specsift.plots.records.spectrum_records` of the object.
        row: its catalogue row (``TARGETID``, ``RANK``, ``Z``, ``CHI2_GALAXY``,
            ``OUTLIER_SCORE`` and, when present, ``IS_STAR``, ``CHI2_STAR``, ``OUTLIER_REASON``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    star = bool(_value(row, "IS_STAR", False)) and record.get("model_star") is not None
    fig = plt.figure(figsize=(11, 5.6))
    grid = fig.add_gridspec(3, len(GALLERY_LINES), height_ratios=[1.5, 0.55, 1], hspace=0.5,
                            wspace=0.3)
    ax = fig.add_subplot(grid[0, :])
    ax_res = fig.add_subplot(grid[1, :], sharex=ax)
    zooms = [fig.add_subplot(grid[2, k]) for k in range(len(GALLERY_LINES))]
    wave, flux, mask = record["wave"], record["flux"], record["mask"]
    plot_spectrum_with_zooms(ax, zooms, wave, flux, record["model_galaxy"], mask, record["z"],
                             GALLERY_LINES)
    models = [record["model_galaxy"]]
    if star:
        models.append(record["model_star"])
        ax.plot(wave, record["model_star"], color="C0", lw=0.9, label="star model")
        for zoom in zooms:
            if zoom.lines:                      # a covered window: keep its limits
                limits = zoom.get_xlim(), zoom.get_ylim()
                zoom.plot(wave, record["model_star"], color="C0", lw=0.9)
                zoom.set_xlim(limits[0])
                zoom.set_ylim(limits[1])
    reason = _value(row, "OUTLIER_REASON", "") or ""
    ax.plot([], [], " ", label=f"ID {_value(row, 'TARGETID')}")
    ax.plot([], [], " ", label=f"z = {float(_value(row, 'Z', record['z'])):.4f}")
    ax.plot([], [], " ", label=f"reduced $\\chi^2$ = {record['chi2_galaxy']:.2f}"
                               + (f" (star {record['chi2_star']:.2f})" if star else ""))
    ax.plot([], [], " ", label=f"score = {float(_value(row, 'OUTLIER_SCORE', np.nan)):.3g}")
    if reason:
        ax.plot([], [], " ", label=f"reason: {reason}")
    if star:
        ax.plot([], [], " ", label="classified as a star")
    # the helper scales to the model; an outlier's data can lie far from it, so show both
    shown = np.concatenate([np.asarray(flux)[~np.asarray(mask)]] + [np.asarray(m) for m in models])
    shown = shown[np.isfinite(shown)]
    lo, hi = np.nanpercentile(shown, [0.5, 99.5]) if shown.size else (0.0, 1.0)
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-6), hi + 0.1 * (hi - lo + 1e-6))
    ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, frameon=False)
    ax.set_title(f"rank {_value(row, 'RANK')}", fontsize=9, loc="left")
    ax.set_ylabel("normalised flux", fontsize=8)
    ax.tick_params(labelsize=7, labelbottom=False)
    resid = record["resid_star"] if star else record["resid_galaxy"]
    ax_res.axhspan(-3, 3, color="0.92", lw=0)
    ax_res.plot(wave, np.clip(resid, -RESIDUAL_LIMIT, RESIDUAL_LIMIT), color="C0" if star else "C3",
                lw=0.5)
    ax_res.axhline(0, color="0.5", lw=0.5)
    ax_res.set_ylim(-RESIDUAL_LIMIT, RESIDUAL_LIMIT)
    ax_res.set_ylabel("(data-model)/$\\sigma$", fontsize=7)
    ax_res.set_xlabel("observed wavelength [$\\AA$]", fontsize=8)
    ax_res.tick_params(labelsize=7)
    return fig


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.5g}"
    if isinstance(value, np.ndarray):
        shown = ", ".join(_cell(v) for v in value.ravel()[:8])
        return f"[{shown}{', ...' if value.size > 8 else ''}]"
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    return html.escape(str(value))


def _sort_key(value):
    """What the page sorts a cell by: a number when the value is one, else its text."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    return str(value)


def _page(title: str, rows: list[tuple[str, dict]]) -> str:
    """The HTML page: a sortable summary table, then per object its figure and catalogue row."""
    names = list(rows[0][1]) if rows else []
    keys = [[_sort_key(record[n]) for n in names] for _, record in rows]
    head = "".join(f'<th data-col="{k}" title="sort by {html.escape(n)}">{html.escape(n)}</th>'
                   for k, n in enumerate(names))
    summary, blocks = [], []
    for k, (image, record) in enumerate(rows):
        star = "1" if bool(_value(record, "IS_STAR", False)) else "0"
        rank, target = record["RANK"], html.escape(str(_value(record, "TARGETID")))
        cells = "".join(f"<td>{_cell(v)}</td>" for v in record.values())
        reason = html.escape(str(_value(record, "OUTLIER_REASON", "") or ""))
        summary.append(f'<tr data-k="{k}" data-star="{star}"><td><a href="#obj-{k}">{k + 1}</a>'
                       f"</td>{cells}</tr>")
        blocks.append(f'<section id="obj-{k}" class="obj" data-k="{k}" data-star="{star}">\n'
                      f'<h2>Rank {rank}: {target}{" (star)" if star == "1" else ""}'
                      f'{f" &mdash; {reason}" if reason else ""}</h2>\n'
                      f'<img src="{html.escape(image)}" alt="spectrum of rank {rank}" '
                      f'width="1000" loading="lazy">\n<div class="row"><table><tr>'
                      + "".join(f"<th>{html.escape(n)}</th>" for n in names)
                      + f"</tr><tr>{cells}</tr></table></div>\n</section>")
    style = ("body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;"
             "font-size:11px}td,th{border:1px solid #ccc;padding:2px 5px;white-space:nowrap}"
             "#summary th{cursor:pointer;background:#f0f0f0}#summary th.sorted{background:#cde}"
             ".row,.wrap{overflow-x:auto;margin-bottom:1.5em}.hidden{display:none}")
    script = _SCRIPT.replace("__KEYS__", json.dumps(keys))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{style}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"<p>{len(rows)} objects, most unusual first (RANK of OUTLIER_SCORE). Grey bands: "
            "masked pixels; red: galaxy-model reconstruction; blue: star model (objects "
            "classified as stars); middle panel: residual significance of that model. Click a "
            "column head to sort.</p>\n<p><label><input type=\"checkbox\" id=\"hide-stars\"> "
            "hide objects classified as stars</label> <span id=\"shown\"></span></p>\n"
            f'<div class="wrap"><table id="summary"><thead><tr><th data-col="-1">#</th>{head}'
            f'</tr></thead><tbody>{"".join(summary)}</tbody></table></div>\n<div id="objects">'
            + "\n".join(blocks) + f"</div>\n<script>{script}</script>\n</body></html>\n")


_SCRIPT = r"""
(function () {
"use strict";
const KEYS = __KEYS__;
const body = document.querySelector("#summary tbody"), objects = document.getElementById("objects");
const heads = document.querySelectorAll("#summary th"), hide = document.getElementById("hide-stars");
let column = -1, descending = false;
function key(k) { return column < 0 ? k : KEYS[k][column]; }
function compare(a, b) {
  const x = key(a), y = key(b);
  if (x === y) return a - b;
  if (x === null) return 1;
  if (y === null) return -1;
  const order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
  return (descending ? -order : order) || a - b;
}
function apply() {
  const order = KEYS.map((_, k) => k).sort(compare);
  const rows = {}, blocks = {};
  body.querySelectorAll("tr").forEach(r => { rows[r.dataset.k] = r; });
  objects.querySelectorAll("section.obj").forEach(s => { blocks[s.dataset.k] = s; });
  let shown = 0;
  for (const k of order) {
    const hidden = hide.checked && rows[k].dataset.star === "1";
    rows[k].classList.toggle("hidden", hidden);
    blocks[k].classList.toggle("hidden", hidden);
    shown += hidden ? 0 : 1;
    body.appendChild(rows[k]);
    objects.appendChild(blocks[k]);
  }
  heads.forEach(h => h.classList.toggle("sorted", +h.dataset.col === column));
  document.getElementById("shown").textContent = shown + " of " + KEYS.length + " shown";
}
heads.forEach(h => h.addEventListener("click", () => {
  const c = +h.dataset.col;
  descending = (c === column) ? !descending : false;
  column = c;
  apply();
}));
hide.addEventListener("change", apply);
apply();
})();
"""


def write_gallery(out: str | Path, records: list[dict], rows: list[dict],
                  title: str = "specsift outlier gallery") -> Path:
    """Write one PNG per object and ``index.html`` listing them in the order given.

    Arguments:
        out: output folder (created). File names are built from the rank and a sanitised
            object id (:func:`safe_name`), so they always land inside ``out``.
        records: :func:`specsift.plots.records.spectrum_records` of the objects, in rank order.
        rows: the matching catalogue rows (column name -> value), same order.
    """
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    listed = []
    for record, row in zip(records, rows, strict=True):
        name = f"rank{int(row['RANK']):05d}_{safe_name(_value(row, 'TARGETID'))}.png"
        if (root / name).resolve().parent != root:   # cannot happen with safe_name; be certain
            raise ValueError(f"gallery file name {name!r} would leave {out}")
        fig = outlier_figure(record, row)
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
        plt.close(fig)
        listed.append((name, row))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(_page(title, listed))
    logger.info("gallery of %d outliers written to %s", len(listed), out / "index.html")
    return out / "index.html"
