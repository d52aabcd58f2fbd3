"""The review page: a self-contained HTML page to look at outliers in rank order and label them.

``write_review`` writes ``index.html`` (markup, style and script inline) and ``spectra.js`` (the
objects' decimated spectra and catalogue rows, loaded by a plain ``<script>`` tag so that the page
also works opened as a file); nothing is fetched from the network. The script draws each
spectrum on a canvas when it scrolls into view, so a page of 500 objects opens in well under a
second. Per object it shows the spectrum with the galaxy model, the star model's fit where it
applies (objects classified as stars; key ``s`` shows it for all), the residual significance of
the model of the object's class, the catalogue row and the reason it was ranked.

Labels (keys ``i`` interesting, ``n`` not interesting, ``a`` artefact, ``u`` remove, ``e`` note)
are kept in the browser's localStorage under the catalogue's fingerprint, exported as
``labels.csv`` (:mod:`specsift.catalog.labels`) and, when the page is served by
``specsift review --serve``, posted to the server, which writes ``labels.csv`` at once.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..runtime import DEFAULT_DEVICE

__all__ = ["decimate", "review_objects", "write_review", "review_catalog", "ROW_COLUMNS"]

logger = logging.getLogger("specsift.plots")

#: catalogue columns shown first in an object's row (any others follow)
ROW_COLUMNS = ("RANK", "REVIEW_RANK", "TARGETID", "OUTLIER_SCORE", "OUTLIER_REASON",
               "OUTLIER_PVALUE", "OUTLIER_QVALUE", "RELEVANCE", "Z", "SNR", "CHI2_GALAXY",
               "CHI2_STAR", "LOGP_GALAXY", "LOGP_STAR", "IS_STAR", "STAR_LOGLR", "SPECTYPE")


def decimate(wave, flux, ivar, models: list, factor: int) -> dict:
    """Bin ``factor`` consecutive pixels: what the page draws.

    Returns the bin wavelengths, the inverse-variance weighted means of the flux and of each
    model (NaN for a fully masked bin; a model may be None) and ``sqrt(sum(ivar))`` per bin.
    ``(flux - model) * sqrt_weight`` is then the significance of the bin's mean residual,
    ``sum(ivar (flux - model)) / sqrt(sum(ivar))``, so a narrow line keeps its significance
    when binned; the page computes it from these.
    """
    wave, flux, ivar = (np.asarray(a, dtype=np.float64) for a in (wave, flux, ivar))
    n = len(wave) // factor * factor
    shape = (-1, factor)
    good = (ivar > 0) & np.isfinite(flux)
    w = np.where(good, ivar, 0.0)[:n].reshape(shape)
    total = w.sum(axis=1)

    def mean(values):
        values = np.where(good, values, 0.0)[:n].reshape(shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w * values).sum(axis=1) / total, np.nan)

    return {"wave": wave[:n].reshape(shape).mean(axis=1), "flux": mean(flux),
            "models": [None if m is None else mean(np.asarray(m, dtype=np.float64))
                       for m in models],
            "sqrt_weight": np.sqrt(total)}


def _packed(values) -> str:
    """An array as the page reads it: ``[lo, hi, base64 of little-endian int16]``, values
    quantised over [lo, hi] in 65,000 steps (-32768 = missing); ``null`` for None. Four times
    smaller and far faster to load than JSON numbers."""
    if values is None:
        return "null"
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    lo, hi = (float(values[finite].min()), float(values[finite].max())) if finite.any() \
        else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    q = np.full(values.shape, -32768, dtype="<i2")
    q[finite] = np.round((values[finite] - lo) / span * 65000 - 32500).astype("<i2")
    return f'[{lo:.7g},{lo + span:.7g},"{base64.b64encode(q.tobytes()).decode()}"]'


def _value(value):
    """A catalogue value as JSON: integers beyond 2**53 (DESI TARGETIDs are ~4e16) as text,
    which JavaScript numbers would round to another object's id."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    if isinstance(value, np.ndarray):
        return [_value(v) for v in value.ravel()[:16]]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value) if abs(int(value)) <= 2**53 else str(value)
    if isinstance(value, (np.floating, float)):
        return float(f"{value:.6g}") if np.isfinite(value) else None
    if np.ma.is_masked(value):
        return None
    return str(value).strip()


def review_objects(table, records: list[dict], bins: int = 700) -> tuple[str, list[str]]:
    """The JSON text of the objects (catalogue rows + decimated spectra) and the column names.

    ``table`` rows and ``records`` (:func:`specsift.plots.records.spectrum_records`) match
    one to one, in the order the page lists them.
    """
    names = [c for c in ROW_COLUMNS if c in table.colnames]
    names += [c for c in table.colnames if c not in names and np.asarray(table[c]).ndim == 1]
    has = set(table.colnames)
    wave = None
    chunks = []
    for k, record in enumerate(records):
        row = table[k]
        factor = max(1, int(np.ceil(len(record["wave"]) / bins)))
        binned = decimate(record["wave"], record["flux"], record["ivar"],
                          [record["model_galaxy"], record.get("model_star")], factor)
        wave = binned["wave"] if wave is None else wave
        star = bool(row["IS_STAR"]) if "IS_STAR" in has else False
        meta = {"id": str(_value(row["TARGETID"])), "rank": _value(row["RANK"]),
                "reason": _value(row["OUTLIER_REASON"]) if "OUTLIER_REASON" in has else "",
                "star": star, "z": _value(row["Z"]) if "Z" in has else None,
                "chi2g": _value(record["chi2_galaxy"]), "chi2s": _value(record.get("chi2_star")),
                "row": [_value(row[c]) for c in names]}
        head = json.dumps(meta)[:-1]
        model_g, model_s = binned["models"]
        chunks.append(f'{head},"flux":{_packed(binned["flux"])},"mg":{_packed(model_g)},'
                      f'"ms":{_packed(model_s)},"sw":{_packed(binned["sqrt_weight"])}}}')
    text = (f'{{"wave":{json.dumps(np.round(wave, 2).tolist() if wave is not None else [])},'
            f'"objects":[\n' + ",\n".join(chunks) + "]}")
    return text, names


def write_review(out: str | Path, table, records: list[dict], fingerprint: str,
                 labels: dict[str, dict] | None = None, title: str = "specsift review",
                 n_catalog: int | None = None) -> Path:
    """Write the review page for ``table`` (rows in review order) into the folder ``out``.

    Arguments:
        out: the review folder (created); ``labels.csv`` there is kept.
        table: catalogue rows in the order to review (the page numbers them 1, 2, ...).
        records: :func:`specsift.plots.records.spectrum_records` of those rows, same order.
        fingerprint: :func:`specsift.catalog.labels.catalog_fingerprint` of the whole catalogue
            (labels are keyed to it).
        labels: labels already made (shown, and merged with those in the browser).
        n_catalog: objects in the whole catalogue (recorded in exported label files).

    Opened over http (``specsift review --serve``) the page posts each label to the server;
    opened as a file it keeps them in the browser until they are exported.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    objects, names = review_objects(table, records)
    config = {"fingerprint": fingerprint, "columns": names, "labels": labels or {},
              "title": title, "n_catalog": n_catalog or len(records)}
    with atomic_path(out / "spectra.js") as tmp:
        tmp.write_text(f"window.SPECSIFT_DATA = {objects};\n"
                       f"window.SPECSIFT_CONFIG = {json.dumps(config)};\n", encoding="utf-8")
    page = _PAGE.replace("__TITLE__", html.escape(title)).replace("__STYLE__", _STYLE) \
        .replace("__SCRIPT__", _SCRIPT)
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("review page of %d objects written to %s", len(records), out / "index.html")
    return out / "index.html"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>__STYLE__</style></head>
<body>
<header id="bar"><h1>__TITLE__</h1>
<span id="progress"></span>
<button id="export" title="download labels.csv (x)">export labels.csv</button>
<label class="file">import labels.csv <input id="import" type="file" accept=".csv,text/csv"></label>
<label><input id="hide-labelled" type="checkbox"> hide labelled (h)</label>
<span id="status" role="status"></span>
<details><summary>keys</summary><p><kbd>j</kbd>/<kbd>&darr;</kbd> next, <kbd>k</kbd>/<kbd>&uarr;</kbd>
previous, <kbd>i</kbd> interesting, <kbd>n</kbd> not interesting, <kbd>a</kbd> artefact,
<kbd>u</kbd> remove the label, <kbd>e</kbd> write a note (<kbd>Enter</kbd> keeps it),
<kbd>s</kbd> star fits for all, <kbd>h</kbd> hide labelled, <kbd>x</kbd> export.
Grey: data (masked bins left out); red: galaxy model; blue: star model. Lower panel: residual
significance (data - model)/sigma of the object's class model, per bin, dashed at &plusmn;3.</p>
</details></header>
<main id="list"><p id="loading">loading...</p></main>
<script src="spectra.js"></script>
<script>__SCRIPT__</script>
</body></html>
"""

_STYLE = """body{font-family:sans-serif;margin:0;background:#f6f6f6}
#bar{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #ccc;padding:4px 12px;
display:flex;gap:12px;align-items:center;flex-wrap:wrap;font-size:13px}
#bar h1{font-size:15px;margin:0}#bar details p{max-width:60em;margin:4px 0}
.file input{width:11em}main{padding:8px 12px}
.card{background:#fff;border:2px solid #ddd;border-radius:4px;margin:0 0 10px;padding:6px 10px}
.card.current{border-color:#1f6fd1;box-shadow:0 0 0 2px #cfe0f7}
.card h2{font-size:14px;margin:0 0 4px;display:flex;gap:10px;align-items:baseline}
.card .reason{color:#8a3b00}.card canvas{width:100%;max-width:1100px;display:block}
.badge{padding:1px 7px;border-radius:8px;font-size:12px;color:#fff;background:#999}
.badge.interesting{background:#1a8f3c}.badge.not_interesting{background:#777}
.badge.artefact{background:#c0392b}.badge.none{background:none;color:#999}
.row{overflow-x:auto}.row table{border-collapse:collapse;font-size:11px}
.row td,.row th{border:1px solid #ddd;padding:1px 4px;white-space:nowrap}
.note{width:40em;max-width:90%;font-size:12px}.hidden{display:none}"""

_SCRIPT = r"""
(function () {
"use strict";
const D = window.SPECSIFT_DATA, C = window.SPECSIFT_CONFIG;
const LABELS = {i: "interesting", n: "not_interesting", a: "artefact"};
const KEY = "specsift-review:" + C.fingerprint;
const list = document.getElementById("list"), statusBox = document.getElementById("status");
let labels = {}, cur = 0, allStars = false;
const cards = [];
const HEAD = "<tr>" + C.columns.map(c => "<th>" + esc(c) + "</th>").join("") + "</tr>";

function say(text) { statusBox.textContent = text; }
function newer(a, b) { return !b || (a && (a.time || "") >= (b.time || "")); }
function merge(into, from) {
  for (const id in from) if (newer(from[id], into[id])) into[id] = from[id];
}
function saveLocal() {
  try { localStorage.setItem(KEY, JSON.stringify(labels)); } catch (e) { say("browser storage full: export now"); }
}
function loadLocal() {
  try { return JSON.parse(localStorage.getItem(KEY) || "{}"); } catch (e) { return {}; }
}

function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (quoted) {
      if (c === '"' && text[k + 1] === '"') { field += '"'; k++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[k + 1] === "\n") k++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}
function labelsFromCsv(text) {
  const lines = parseCsv(text);
  let k = 0;
  for (; k < lines.length && lines[k][0].startsWith("#"); k++) {
    const m = lines[k].join(",").match(/catalog=([\w:]+)/);
    if (m && m[1] !== C.fingerprint)
      throw new Error("these labels belong to another catalogue (" + m[1].slice(0, 19) +
                      "...), not to this one (" + C.fingerprint.slice(0, 19) + "...): refused");
  }
  if ((lines[k] || []).join(",") !== "TARGETID,label,note,time")
    throw new Error("not a labels.csv: expected the columns TARGETID,label,note,time");
  const out = {};
  for (k++; k < lines.length; k++) {
    const f = lines[k];
    if (f.length === 1 && f[0] === "") continue;
    if (f.length !== 4) throw new Error("labels.csv line " + (k + 1) + ": " + f.length + " fields, expected 4");
    if (!Object.values(LABELS).includes(f[1]))
      throw new Error("labels.csv line " + (k + 1) + ": label '" + f[1] + "' is not one of interesting, not_interesting, artefact");
    out[f[0]] = {label: f[1], note: f[2], time: f[3]};
  }
  return out;
}
function csvField(s) { s = String(s == null ? "" : s); return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
function labelsCsv() {
  const lines = ["# specsift labels; catalog=" + C.fingerprint + "; objects=" + (C.n_catalog || D.objects.length),
                 "TARGETID,label,note,time"];
  const ids = Object.keys(labels).filter(id => labels[id].label)
    .sort((a, b) => (labels[a].time + a).localeCompare(labels[b].time + b));
  for (const id of ids) lines.push([id, labels[id].label, labels[id].note, labels[id].time].map(csvField).join(","));
  return lines.join("\n") + "\n";
}

function unpack(p) {
  if (!p) return null;
  const bytes = atob(p[2]), q = new Int16Array(bytes.length / 2), out = new Array(q.length);
  for (let k = 0; k < q.length; k++) q[k] = bytes.charCodeAt(2 * k) | (bytes.charCodeAt(2 * k + 1) << 8);
  const lo = p[0], span = p[1] - p[0];
  for (let k = 0; k < q.length; k++) out[k] = q[k] === -32768 ? null : lo + (q[k] + 32500) / 65000 * span;
  return out;
}
function arrays(o) {
  if (o.cache) return o.cache;
  const flux = unpack(o.flux), mg = unpack(o.mg), ms = unpack(o.ms), sw = unpack(o.sw);
  const resid = m => m && flux.map((f, k) => (f === null || m[k] === null || !sw[k]) ? null : (f - m[k]) * sw[k]);
  o.cache = {flux: flux, mg: mg, ms: ms, rg: resid(mg), rs: resid(ms)};
  return o.cache;
}
function cell(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return "[" + v.map(cell).join(", ") + "]";
  return String(v);
}
function build() {
  const frag = document.createDocumentFragment();
  D.objects.forEach((o, k) => {
    const card = document.createElement("article");
    card.className = "card";
    card.id = "obj-" + (k + 1);
    card.dataset.id = String(o.id);
    card.dataset.index = String(k);
    card.innerHTML =
      '<h2><span class="n">' + (k + 1) + '.</span><span>rank ' + esc(cell(o.rank)) + '</span><span class="tid">' +
      esc(cell(o.id)) + '</span><span class="reason">' + esc(o.reason || "") + '</span><span>' +
      (o.star ? "classified as a star" : "") + '</span><span class="badge none">unlabelled</span></h2>' +
      '<canvas class="spec" width="1100" height="230"></canvas><canvas class="resid" width="1100" height="90"></canvas>' +
      '<input class="note" type="text" placeholder="note (e; Enter keeps it)"><div class="row"></div>';
    const note = card.querySelector(".note");
    note.addEventListener("keydown", ev => {
      if (ev.key === "Enter" || ev.key === "Escape") { ev.preventDefault(); keepNote(k); note.blur(); }
      ev.stopPropagation();
    });
    note.addEventListener("change", () => keepNote(k));
    card.addEventListener("click", ev => { if (ev.target !== note) select(k, false); });
    cards.push(card);
    frag.appendChild(card);
  });
  list.innerHTML = "";
  list.appendChild(frag);
  const seen = new IntersectionObserver(entries => {
    for (const e of entries) if (e.isIntersecting) { draw(+e.target.dataset.index); seen.unobserve(e.target); }
  }, {rootMargin: "400px"});
  cards.forEach(c => seen.observe(c));
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }

function range(arrays, lo, hi) {
  const v = [];
  for (const a of arrays) if (a) for (const x of a) if (x !== null) v.push(x);
  if (!v.length) return [0, 1];
  v.sort((p, q) => p - q);
  const a = v[Math.floor(lo * (v.length - 1))], b = v[Math.floor(hi * (v.length - 1))];
  const pad = 0.08 * (b - a || 1);
  return [a - pad, b + pad];
}
function line(g, xs, ys, x0, x1, y0, y1, w, h, color, width, step) {
  g.strokeStyle = color; g.lineWidth = width; g.beginPath();
  let pen = false;
  for (let k = 0; k < xs.length; k++) {
    const y = ys[k];
    if (y === null) { pen = false; continue; }
    const px = (xs[k] - x0) / (x1 - x0) * w, py = h - (Math.max(y0, Math.min(y1, y)) - y0) / (y1 - y0) * h;
    if (!pen) { g.moveTo(px, py); pen = true; } else g.lineTo(px, py);
  }
  g.stroke();
}
function draw(k) {
  const card = cards[k], w = 1100, xs = D.wave, o = Object.assign({}, D.objects[k], arrays(D.objects[k]));
  if (!card.dataset.drawn) {
    card.querySelector(".row").innerHTML = "<table>" + HEAD + "<tr>" +
      o.row.map(v => "<td>" + esc(cell(v)) + "</td>").join("") + "</tr></table>";
  }
  card.dataset.drawn = "1";
  const x0 = xs[0], x1 = xs[xs.length - 1];
  const showStar = o.ms && (o.star || allStars);
  const spec = card.querySelector(".spec").getContext("2d"), H = 230;
  spec.clearRect(0, 0, w, H);
  const [y0, y1] = range([o.flux, o.mg, showStar ? o.ms : null], 0.005, 0.995);
  line(spec, xs, o.flux, x0, x1, y0, y1, w, H - 14, "#888", 1, true);
  line(spec, xs, o.mg, x0, x1, y0, y1, w, H - 14, "#d62728", 1.3);
  if (showStar) line(spec, xs, o.ms, x0, x1, y0, y1, w, H - 14, "#1f5fd1", 1.3);
  spec.fillStyle = "#333"; spec.font = "11px sans-serif";
  const legend = ["data", "galaxy model (chi2 " + cell(o.chi2g) + ")"];
  if (showStar) legend.push("star model (chi2 " + cell(o.chi2s) + ")");
  if (o.reason) legend.push("reason: " + o.reason);
  spec.fillText(legend.join("   ") + "   z = " + cell(o.z), 6, 12);
  spec.fillText(Math.round(x0) + " A", 2, H - 2); spec.fillText(Math.round(x1) + " A", w - 50, H - 2);
  const res = card.querySelector(".resid").getContext("2d"), R = 90;
  res.clearRect(0, 0, w, R);
  const r = (o.star && o.rs) ? o.rs : o.rg, lim = 10;
  res.strokeStyle = "#bbb"; res.setLineDash([4, 3]);
  for (const s of [-3, 3]) { const py = R / 2 - s / lim * R / 2; res.beginPath(); res.moveTo(0, py); res.lineTo(w, py); res.stroke(); }
  res.setLineDash([]);
  line(res, xs, r, x0, x1, -lim, lim, w, R, (o.star && o.rs) ? "#1f5fd1" : "#d62728", 1);
  res.fillStyle = "#333"; res.font = "11px sans-serif";
  res.fillText("residual significance (sigma, +-" + lim + ") vs " + ((o.star && o.rs) ? "star" : "galaxy") + " model", 6, 11);
}

function showLabel(k) {
  const card = cards[k], entry = labels[String(D.objects[k].id)], badge = card.querySelector(".badge");
  const value = entry && entry.label ? entry.label : "";
  badge.className = "badge " + (value || "none");
  badge.textContent = value ? value.replace("_", " ") : "unlabelled";
  card.dataset.label = value;
  const note = card.querySelector(".note");
  if (document.activeElement !== note) note.value = entry && entry.note ? entry.note : "";
  card.classList.toggle("hidden", hideLabelled() && !!value && k !== cur);
}
function hideLabelled() { return document.getElementById("hide-labelled").checked; }
function progressText() {
  const n = D.objects.filter(o => labels[String(o.id)] && labels[String(o.id)].label).length;
  document.getElementById("progress").textContent = n + " of " + D.objects.length + " labelled";
}
function post(id) {
  if (!location.protocol.startsWith("http")) return;
  const e = labels[id];
  fetch("labels", {method: "POST", headers: {"Content-Type": "application/json"},
                   body: JSON.stringify({fingerprint: C.fingerprint, TARGETID: id, label: e.label || null,
                                         note: e.note || "", time: e.time})})
    .then(r => r.ok ? say("saved " + id + " to labels.csv") : r.text().then(t => say("server refused: " + t)))
    .catch(() => say("server unreachable: labels kept in this browser; export them"));
}
function stamp() { return new Date().toISOString().replace(/\.\d+Z$/, "Z"); }
function setLabel(k, value) {
  const id = String(D.objects[k].id), old = labels[id] || {};
  const note = cards[k].querySelector(".note").value || old.note || "";
  labels[id] = {label: value, note: note, time: stamp()};
  saveLocal(); showLabel(k); progressText(); post(id);
}
function keepNote(k) {
  const id = String(D.objects[k].id), old = labels[id];
  const note = cards[k].querySelector(".note").value;
  if (old && old.label) { labels[id] = {label: old.label, note: note, time: stamp()}; saveLocal(); post(id); }
}
function select(k, scroll) {
  if (k < 0 || k >= cards.length) return;
  const before = cur;
  cards[cur].classList.remove("current");
  cur = k;
  cards[cur].classList.add("current");
  showLabel(before);
  if (scroll !== false) {
    cards[cur].scrollIntoView({block: "start"});
    window.scrollBy(0, -document.getElementById("bar").offsetHeight);
  }
}
function step(direction) {
  let k = cur + direction;
  while (k >= 0 && k < cards.length && cards[k].classList.contains("hidden")) k += direction;
  select(k);
}
function exportCsv() {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([labelsCsv()], {type: "text/csv"}));
  a.download = "labels.csv";
  document.body.appendChild(a); a.click(); a.remove();
}
function refreshAll() { cards.forEach((c, k) => showLabel(k)); progressText(); }

document.addEventListener("keydown", ev => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !cards.length) return;
  const key = ev.key;
  if (key in LABELS) { setLabel(cur, LABELS[key]); step(1); }
  else if (key === "u") { setLabel(cur, ""); }
  else if (key === "j" || key === "ArrowDown") step(1);
  else if (key === "k" || key === "ArrowUp") step(-1);
  else if (key === "e") { const n = cards[cur].querySelector(".note"); n.focus(); }
  else if (key === "s") { allStars = !allStars; cards.forEach((c, k) => { if (c.dataset.drawn) draw(k); }); }
  else if (key === "h") { const b = document.getElementById("hide-labelled"); b.checked = !b.checked; refreshAll(); }
  else if (key === "x") exportCsv();
  else return;
  ev.preventDefault();
});
document.getElementById("export").addEventListener("click", exportCsv);
document.getElementById("hide-labelled").addEventListener("change", refreshAll);
document.getElementById("import").addEventListener("change", ev => {
  const file = ev.target.files[0];
  if (!file) return;
  file.text().then(text => {
    try { merge(labels, labelsFromCsv(text)); saveLocal(); refreshAll(); say("imported " + file.name); }
    catch (e) { say(e.message); alert(e.message); }
  });
});

merge(labels, C.labels || {});
merge(labels, loadLocal());
build();
select(0, false);
refreshAll();
document.body.dataset.ready = "1";
if (location.protocol.startsWith("http")) {
  fetch("labels.csv", {cache: "no-store"}).then(r => r.ok ? r.text() : "").then(text => {
    if (!text) return;
    try { merge(labels, labelsFromCsv(text)); saveLocal(); refreshAll(); } catch (e) { say(e.message); }
  }).finally(() => { document.body.dataset.synced = "1"; });
} else document.body.dataset.synced = "1";
})();
"""


def review_catalog(catalog, out, top: int = 500, order: str | None = None, store=None,
                   galaxy_model=None, star_model=None, device: str = DEFAULT_DEVICE) -> dict:
    """``specsift review``: the review page of the ``top`` objects of a catalogue.

    Arguments:
        catalog: a catalogue of ``specsift score`` (or of ``specsift rerank``).
        out: the review folder; a ``labels.csv`` already there (of this catalogue) is kept
            and shown.
        top: how many objects, in ``order``.
        order: ``RANK`` or ``REVIEW_RANK``; default REVIEW_RANK when the catalogue has it.
        store, galaxy_model, star_model: override the paths recorded in the catalogue.

    Returns:
        what :class:`specsift.catalog.labels.LabelBook` needs: ``fingerprint``,
        ``target_ids``, ``labels_path``, ``index``.
    """
    from ..catalog import read_catalog
    from ..catalog.labels import catalog_fingerprint, read_labels
    from ..errors import SpecsiftInputError
    from .records import open_sources, ranked_rows, spectrum_records

    if top < 1:
        raise SpecsiftInputError("--top must be at least 1")
    table, metadata = read_catalog(catalog)
    order = order or ("REVIEW_RANK" if "REVIEW_RANK" in table.colnames else "RANK")
    chosen = ranked_rows(table, top, order=order, path=catalog)
    fingerprint = catalog_fingerprint(table["TARGETID"])
    labels_path = Path(out) / "labels.csv"
    labels = read_labels(labels_path, fingerprint, table["TARGETID"]) \
        if labels_path.exists() else {}
    store, galaxy, star = open_sources(metadata, store, galaxy_model, star_model, device=device,
                                       catalog=catalog)
    records = spectrum_records(store, chosen["STORE_ROW"], galaxy, star, device=device)
    index = write_review(out, chosen, records, fingerprint, labels,
                         title=f"specsift review: {Path(catalog).name} ({order})",
                         n_catalog=len(table))
    return {"fingerprint": fingerprint, "target_ids": table["TARGETID"],
            "labels_path": labels_path, "index": index}
