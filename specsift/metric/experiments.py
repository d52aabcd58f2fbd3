"""The experiments of de Mijolla & Ness (2022) as functions writing a table and a figure each.

* ``table1``: leave-one-cluster-out (LOCO) rate when keeping the top-N scaled dimensions.
* ``fig2``: rate against the PPCA dimension K, with and without cross-validation.
* ``fig4``: spectra vs all abundances vs an abundance subset, each raw, scaled and transformed.
* ``fig5``: expected LOCO rate against the number of training clusters.
* ``fig8``: Appendix C, the plate check: sibling distances for pairs observed together and
  apart, and field stars on the member's plate against those from other plates.
* ``fig9``: per-cluster histograms of sibling and field distances in the RSCA space.
* ``appendix_a``: interstellar windows from high-extinction residuals.

Each experiment returns an :class:`Experiment`: table rows (written as CSV + JSON by
:func:`run_report`) and what its figure needs; ``specsift.plots.rsca.draw_report`` draws
them, so this package draws nothing. The expensive step (the PPCA of the field spectra) runs
once, at the largest K; smaller K use the truncated model (:meth:`PPCA.truncated`).
Everything after it is K x K algebra, so each experiment takes seconds.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import SpecsiftInputError
from ..preprocess.stellar_samples import DEFAULT_SPECIES, SUBSET_SPECIES, SampleConfig
from ..runtime import DEFAULT_DEVICE
from .dataset import RSCAData, load_rsca_data
from .defaults import N_COMPONENTS
from .doppelganger import doppelganger_rate, loco_evaluate
from .fitting import field_obs, load_censored
from .ism_windows import find_ism_windows
from .ppca import PPCA
from .rsca import LatentMetric

__all__ = ["Context", "build_context", "run_report", "EXPERIMENTS", "Experiment", "Report",
           "write_table", "oracle_latents", "true_abundances", "plain_rate"]

logger = logging.getLogger("specsift.metric")


@dataclass
class Context:
    """Shared inputs of the experiments: samples, fitted PPCA and its latents."""

    data: RSCAData
    ppca: PPCA
    z_field: np.ndarray
    z_members: np.ndarray
    allstar: str
    occam: str
    seed: int
    truth: str | None = None
    windows: object = None
    plate_robust: bool = True

    def rv_ak(self):
        return self.data.rv_ak()

    def pca_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(field, members) PPCA latents in pixel units: the plain PCA representation."""
        scale = np.sqrt(np.maximum(self.ppca.explained_variance_ - self.ppca.noise_variance_, 0))
        return self.z_field * scale, self.z_members * scale

    def metric(self, **options) -> LatentMetric:
        """An unfitted metric with the context's recipe (plate-robust or the paper's)."""
        return LatentMetric(plate_robust=self.plate_robust, **options)

    def loco(self, z_field=None, z_members=None, data: RSCAData | None = None, metric=None,
             **kw):
        """LOCO rates with the plate-safe rate and checks (plates from the allStar)."""
        data = data or self.data
        member_plates, field_plates = data.plates()
        return loco_evaluate(self.z_field if z_field is None else z_field,
                             self.z_members if z_members is None else z_members,
                             data.clusters, *data.rv_ak(), metric=metric or self.metric(),
                             empty="skip", member_plates=member_plates,
                             field_plates=field_plates, field_candidates=data.field_candidates,
                             **kw)

    def plain(self, z_field, z_members, data: RSCAData | None = None):
        """No-CV rate of a fixed representation (no training involved), with plate checks."""
        return plain_rate(z_field, z_members, data or self.data)


def plain_rate(z_field, z_members, data: RSCAData):
    """No-CV doppelganger rate of a fixed representation of the samples of ``data`` (no
    training involved, so no cross-validation), with the plate checks."""
    mv, ma, fv, fa = data.rv_ak()
    member_plates, field_plates = data.plates()
    stacked = np.concatenate([z_members, z_field])
    labels = np.concatenate([data.clusters, np.full(len(z_field), "")])
    return doppelganger_rate(stacked, labels, labels == "", np.concatenate([mv, fv]),
                             np.concatenate([ma, fa]), empty="skip",
                             plates=np.concatenate([member_plates, field_plates]),
                             candidates=np.concatenate([np.full(len(z_members), ""),
                                                        data.field_candidates]))


@dataclass
class Experiment:
    """One experiment's table rows and the inputs of its figure."""

    rows: list[dict]
    figure: dict


@dataclass
class Report:
    """What :func:`run_report` did: tables written and figure inputs by experiment name."""

    tables: list[Path]
    figures: dict[str, dict]


def build_context(allstar, occam, spectra, n_components: int = N_COMPONENTS, seed: int = 0,
                  truth=None, device: str = DEFAULT_DEVICE, detect_windows: bool = True,
                  with_errors: bool = False, plate_robust: bool = True) -> Context:
    """Load the samples, censor interstellar windows (App. A) and fit the field PPCA once."""
    data, _, windows = load_censored(allstar, occam, spectra=spectra, config=SampleConfig(),
                                     ism_windows="detect" if detect_windows else "none",
                                     with_errors=with_errors, seed=seed)
    ppca = PPCA(n_components=n_components, seed=seed,
                device=device).fit(data.field)
    return Context(data, ppca, ppca.transform(data.field).astype(np.float64),
                   ppca.transform(data.members).astype(np.float64), str(allstar), str(occam),
                   seed, truth, windows, plate_robust)


def write_table(rows: list[dict], path: Path) -> Path:
    """Write rows as CSV (and the same rows as JSON beside it), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    return path


def table1(ctx: Context) -> Experiment:
    """LOCO rate keeping the top-N dimensions (Table 1 of the paper)."""
    k = ctx.z_field.shape[1]
    rows = [{"n_dims": n, "loco_rate": ctx.loco(n_dims=n).global_rate}
            for n in sorted({1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, k} - {0}) if n <= k]
    return Experiment(rows, {"rows": rows})


def fig2(ctx: Context) -> Experiment:
    """Rate against K, with LOCO and without cross-validation (Fig. 2)."""
    data = ctx.data
    rows = []
    for k in [k for k in (2, 5, 10, 15, 20, 25, 30, 40, 50) if k <= ctx.ppca.n_components]:
        sub = ctx.ppca if k == ctx.ppca.n_components else ctx.ppca.truncated(k)
        zf, zm = sub.transform(data.field), sub.transform(data.members)
        full = ctx.metric().fit(zf, zm, data.clusters, field_obs(data))
        rows.append({"k": k, "loco_rate": ctx.loco(zf, zm).global_rate,
                     "no_cv_rate": ctx.plain(full.transform(zf), full.transform(zm)).global_rate})
    return Experiment(rows, {"rows": rows})


def _abundance_data(ctx: Context, species) -> RSCAData:
    return load_rsca_data(ctx.allstar, ctx.occam, abundances=tuple(species),
                          config=SampleConfig())


def fig4(ctx: Context) -> Experiment:
    """Spectra, all abundances and an abundance subset: raw, scaled, fully transformed (Fig. 4)."""
    inputs = [("spectra", ctx.data, *ctx.pca_scores())]
    for name, species in (("all_abundances", DEFAULT_SPECIES),
                          ("abundance_subset", SUBSET_SPECIES)):
        data = _abundance_data(ctx, species)
        inputs.append((name, data, data.field.astype(np.float64),
                       data.members.astype(np.float64)))
    rows = []
    for name, data, zf, zm in inputs:
        scaled = ctx.loco(zf, zm, data, metric=ctx.metric(whiten=False, rotate=False))
        rows.append({"input": name, "raw": ctx.plain(zf, zm, data).global_rate,
                     "scaled": scaled.global_rate,
                     "rsca": ctx.loco(zf, zm, data).global_rate,
                     "n_field": len(zf), "n_members": len(zm)})
    if ctx.truth:
        rows.append(dict(_oracle_row(ctx), input="true_abundances_oracle"))
    return Experiment(rows, {"rows": rows})


def _oracle_row(ctx: Context) -> dict:
    """Plain rate of the true abundances of a mock (the floor; evaluation only)."""
    zf, zm = oracle_latents(ctx)
    return {"raw": ctx.plain(zf, zm).global_rate, "scaled": np.nan, "rsca": np.nan,
            "n_field": len(zf), "n_members": len(zm)}


def oracle_latents(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """True abundances (truth.fits of a mock) of the field and member samples."""
    return true_abundances(ctx.truth, ctx.allstar, ctx.data.samples)


def true_abundances(truth, allstar, samples) -> tuple[np.ndarray, np.ndarray]:
    """(field, members) true abundances of a mock's ``samples`` (a
    :class:`~specsift.preprocess.stellar_samples.StellarSamples` of ``allstar``), read from its
    ``truth`` file: the oracle representation (evaluation only)."""
    from astropy.io import fits

    from ..io.catalogs import read_allstar

    with fits.open(truth) as hdul:
        table_truth = hdul[1].data
        true_ids = np.char.strip(np.asarray(table_truth["APOGEE_ID"]).astype(str))
        elements = [e.strip() for e in hdul[1].header.get("ORACLE", "").split(",") if e.strip()]
        true_xh = np.asarray(table_truth["X_H"], np.float64)
    table = read_allstar(allstar)
    names = list(table.meta["ELEMENTS"])
    index = [names.index(e) for e in (elements or DEFAULT_SPECIES) if e in names]
    position = {s: i for i, s in enumerate(true_ids)}
    ids = np.asarray(table["APOGEE_ID"])
    return (true_xh[[position[i] for i in ids[samples.field]]][:, index],
            true_xh[[position[i] for i in ids[samples.members]]][:, index])


def fig5(ctx: Context, draws: int = 5) -> Experiment:
    """Expected LOCO rate against the number of training clusters (Fig. 5)."""
    names = np.unique(ctx.data.clusters)
    rng = np.random.default_rng(ctx.seed)
    rows = []
    sizes = sorted({n for n in (2, 3, 4, 6, 8, 10, 12, 15, 18, 21, len(names) - 1)
                    if 2 <= n <= len(names) - 1})
    for n in sizes:
        rates = []
        for _ in range(draws if n < len(names) - 1 else 1):
            train = {c: list(rng.choice(names[names != c], n, replace=False)) for c in names}
            rates.append(ctx.loco(train_clusters=train).global_rate)
        rows.append({"n_training_clusters": n, "mean_rate": float(np.mean(rates)),
                     "std_rate": float(np.std(rates)), "draws": len(rates)})
    return Experiment(rows, {"rows": rows})


def fig8(ctx: Context) -> Experiment:
    """Appendix C (Fig. 8): does the metric see the plate? Both recipes, LOCO."""
    rows = []
    for robust in (False, True):
        result = ctx.loco(metric=LatentMetric(plate_robust=robust))
        rows.append({"recipe": "plate_robust" if robust else "paper",
                     "loco_rate": result.global_rate, "plate_safe_rate": result.plate_safe_rate,
                     **result.plates.to_dict()})
    for row in rows:
        for key in ("sibling_pairs_same_other_plate", "field_pairs_same_other_plate"):
            row[key] = "/".join(map(str, row[key]))
    return Experiment(rows, {"rows": rows})


def fig9(ctx: Context) -> Experiment:
    """Per-cluster histograms of sibling and field distances in the LOCO RSCA space (Fig. 9)."""
    result = ctx.loco(keep_distances=True)
    rows = [{"cluster": name, "members": result.sizes[name], "rate": result.per_cluster[name],
             "median_sibling_distance": float(np.median(sib)),
             "median_field_distance": float(np.median(fld)), "field_pairs": len(fld)}
            for name, (sib, fld) in result.distances.items()]
    return Experiment(rows, {"distances": result.distances, "rates": result.per_cluster})


def appendix_a(ctx: Context) -> Experiment:
    """Interstellar windows found in the residuals of high-extinction stars (Appendix A)."""
    found = ctx.windows or find_ism_windows(ctx.data.field, ctx.data.samples.column("AK_TARG")[1],
                                            ctx.data.wave, seed=ctx.seed)
    rows = [{"window_start": lo, "window_end": hi, "centre": c}
            for (lo, hi), c in zip(found.windows, found.centres)] or \
        [{"window_start": np.nan, "window_end": np.nan, "centre": np.nan}]
    return Experiment(rows, {"found": found})


# name -> (experiment, table file); the figure of each is ``<table stem>.png``
EXPERIMENTS = {"table1": (table1, "table1_top_n.csv"), "fig2": (fig2, "fig2_rate_vs_k.csv"),
               "fig4": (fig4, "fig4_representations.csv"),
               "fig5": (fig5, "fig5_training_clusters.csv"), "fig8": (fig8, "fig8_plates.csv"),
               "fig9": (fig9, "fig9_distances.csv"), "appendix_a": (appendix_a,
                                                                    "appendix_a_windows.csv")}


def run_report(allstar, occam, spectra, out, truth=None, n_components: int = N_COMPONENTS,
               seed: int = 0, only=None, device: str = DEFAULT_DEVICE,
               plate_robust: bool = True) -> Report:
    """Run the experiments (all, or those named in ``only``) and write their tables; the
    figure inputs come back in the :class:`Report` (``specsift.plots.rsca.draw_report``)."""
    unknown = set(only or ()) - set(EXPERIMENTS)
    if unknown:
        raise SpecsiftInputError(f"unknown experiment(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(EXPERIMENTS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = build_context(allstar, occam, spectra, n_components, seed, truth, device,
                        plate_robust=plate_robust)
    report = Report([], {})
    for name, (experiment, table) in EXPERIMENTS.items():
        if only and name not in only:
            continue
        logger.info("experiment %s", name)
        result = experiment(ctx)
        report.tables.append(write_table(result.rows, out / table))
        figure = "appendix_a_ism.png" if name == "appendix_a" else Path(table).stem + ".png"
        report.figures[name] = dict(result.figure, path=out / figure)
    if "appendix_a" in report.figures:
        with atomic_path(out / "appendix_a_ism.json") as tmp:
            tmp.write_text(json.dumps(report.figures["appendix_a"]["found"].to_dict(), indent=1))
        report.tables.append(out / "appendix_a_ism.json")
    return report
