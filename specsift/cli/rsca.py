"""``specsift rsca``: learn, apply and evaluate the RSCA chemical-similarity metric.

Sub-verbs: ``fit`` (catalogues + spectra -> model folder), ``transform`` (model + spectra ->
embedding FITS), ``evaluate`` (cross-validated doppelganger rates and the plate checks),
``report`` (the paper's experiments: tables and figures), ``siblings`` (the stars most alike a
given star) and ``pair`` (are two stars alike?). The work is done in ``specsift.metric``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..atomic import atomic_path
from ..errors import SpecsiftInputError
from ..io.apogee import ERROR_THRESHOLD
from ..metric.defaults import ISM_WINDOWS, N_COMPONENTS
from ._defaults import add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.rsca")


def _species(text: str | None):
    from ..preprocess.stellar_samples import DEFAULT_SPECIES, SUBSET_SPECIES

    if text in (None, "all"):
        return DEFAULT_SPECIES
    if text == "subset":
        return SUBSET_SPECIES
    return tuple(s.strip().upper() for s in text.split(",") if s.strip())


def _common(parser: argparse.ArgumentParser, spectra_required: bool = False) -> None:
    parser.add_argument("--spectra", nargs="+", required=spectra_required,
                        help="bulk spectra FITS file(s) or folder(s) of aspcapStar files")
    add_device_option(parser, " for the PPCA")


def register(subparsers) -> None:
    parser = subparsers.add_parser("rsca", help="chemical similarity metric (RSCA)",
                                   description=__doc__)
    verbs = parser.add_subparsers(dest="rsca_verb", metavar="SUBVERB", required=True)

    fit = verbs.add_parser("fit", help="learn the metric from field stars and cluster members")
    fit.add_argument("--allstar", required=True, help="allStar catalogue FITS")
    fit.add_argument("--occam", required=True, help="OCCAM member catalogue FITS")
    _common(fit)
    fit.add_argument("--abundances", nargs="?", const="all", default=None,
                     help="fit on abundance vectors instead of spectra: all (default), subset, "
                          "or a comma-separated species list")
    fit.add_argument("--out", required=True, help="model folder to write")
    fit.add_argument("--n-components", type=int, default=N_COMPONENTS,
                     help=f"PPCA dimensions K ({N_COMPONENTS})")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--weighted", action="store_true",
                     help="error-weighted PPCA (per-pixel noise sigma^2 + err^2)")
    fit.add_argument("--error-threshold", type=float, default=ERROR_THRESHOLD,
                     help=f"censor pixels with a larger error ({ERROR_THRESHOLD:g})")
    fit.add_argument("--ism-windows", choices=("detect", "none"), default=ISM_WINDOWS,
                     help=f"censor interstellar windows found in high-A_K residuals "
                          f"({ISM_WINDOWS})")
    fit.add_argument("--paper", action="store_true",
                     help="the paper's exact recipe (default: the plate-robust metric, which "
                          "counts what stars on one plate share as intra-cluster scatter)")
    fit.add_argument("--plate-column", default=None,
                     help="allStar column telling which stars were observed together "
                          "(default: LOCATION_ID, else FIELD, else PLATE)")
    fit.add_argument("--skip-bad", action="store_true",
                     help="skip stars whose every pixel is censored (logged and counted in the "
                          "model's config) instead of stopping")
    fit.set_defaults(func=run_fit)

    transform = verbs.add_parser("transform", help="embed spectra with a fitted model")
    transform.add_argument("model", help="model folder from `rsca fit`")
    _common(transform)
    transform.add_argument("--allstar", help="allStar catalogue (abundance models)")
    transform.add_argument("--out", required=True, help="output FITS (APOGEE_ID, EMBEDDING)")
    transform.add_argument("--n-dims", type=int, default=None, help="keep the top-n dimensions")
    transform.set_defaults(func=run_transform)

    evaluate = verbs.add_parser("evaluate", help="leave-one-cluster-out doppelganger rate")
    evaluate.add_argument("model", help="model folder from `rsca fit`")
    evaluate.add_argument("--allstar", required=True)
    evaluate.add_argument("--occam", required=True)
    _common(evaluate)
    evaluate.add_argument("--n-dims", type=int, default=None, help="keep the top-n dimensions")
    evaluate.add_argument("--skip-empty", action="store_true",
                          help="skip clusters without any field pair passing the RV/A_K cut "
                               "(default: stop with an error naming the cluster)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.add_argument("--out", type=Path, help="also write the result as JSON to this file")
    evaluate.set_defaults(func=run_evaluate)

    report = verbs.add_parser("report", help="run the paper's experiments (tables + figures)")
    report.add_argument("--allstar", required=True)
    report.add_argument("--occam", required=True)
    _common(report, spectra_required=True)
    report.add_argument("--out", required=True, help="folder for CSV/JSON tables and PNG figures")
    report.add_argument("--truth", default=None, help="truth.fits of a mock (adds the oracle)")
    report.add_argument("--n-components", type=int, default=N_COMPONENTS,
                        help=f"PPCA dimensions K ({N_COMPONENTS})")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--only", nargs="+", default=None,
                        help="run only these experiments (table1 fig2 fig4 fig5 fig8 fig9 "
                             "appendix_a)")
    report.add_argument("--paper", action="store_true",
                        help="the paper's exact recipe instead of the plate-robust metric")
    report.set_defaults(func=run_report)

    siblings = verbs.add_parser("siblings", help="the stars chemically closest to one star")
    siblings.add_argument("model", help="model folder from `rsca fit` (spectra)")
    _common(siblings, spectra_required=True)
    siblings.add_argument("--allstar", required=True,
                          help="allStar catalogue (the field cuts decide which stars are searched)")
    siblings.add_argument("--id", required=True, dest="star", help="APOGEE_ID of the star")
    siblings.add_argument("--top", type=int, default=50, help="how many to list (50)")
    siblings.add_argument("--json", action="store_true", help="print the list as JSON")
    siblings.set_defaults(func=run_siblings)

    pair = verbs.add_parser("pair", help="are two stars chemically alike?")
    pair.add_argument("model", help="model folder from `rsca fit` (spectra)")
    pair.add_argument("ids", nargs=2, metavar="APOGEE_ID")
    _common(pair, spectra_required=True)
    pair.add_argument("--allstar", required=True, help="allStar catalogue (field cuts)")
    pair.add_argument("--json", action="store_true", help="print the answer as JSON")
    pair.set_defaults(func=run_pair)


def run_fit(args) -> int:
    from ..metric.fitting import fit_rsca
    from ..metric.persist import save_model
    from ..runtime import seed_everything

    seed_everything(args.seed)
    species = _species(args.abundances) if args.abundances else None
    if species is None and not args.spectra:
        raise SpecsiftInputError("give --spectra, or --abundances to fit on abundance vectors")
    fitted = fit_rsca(args.allstar, args.occam, spectra=args.spectra, abundances=species,
                      n_components=args.n_components, seed=args.seed,
                      weighted=args.weighted, error_threshold=args.error_threshold,
                      ism_windows=args.ism_windows, plate_robust=not args.paper,
                      plate_column=args.plate_column, skip_bad=args.skip_bad,
                      device=args.device)
    save_model(fitted.model, args.out, fitted.config, fitted.reference)
    skipped = len(fitted.config["skipped_stars"])
    print(f"RSCA model written to {args.out} ({fitted.config['n_field']} field stars, "
          f"{fitted.config['n_members']} members, {skipped} star(s) skipped)")
    return 0


def run_transform(args) -> int:
    import numpy as np
    from astropy.table import Table

    from ..io.catalogs import MISSING, abundance_matrix, read_allstar
    from ..metric.fitting import embed_files
    from ..metric.persist import load_model

    model, config = load_model(args.model, device=args.device)
    if config["kind"] == "abundances":
        if not args.allstar:
            raise SpecsiftInputError("this model was fitted on abundances: give --allstar",
                                         args.model)
        table = read_allstar(args.allstar)
        values = abundance_matrix(table, config["species"])
        ok = (values > MISSING / 2).all(1)
        ids = np.asarray(table["APOGEE_ID"])[ok]
        embedding = model.transform(values[ok], n_dims=args.n_dims)
        if (~ok).any():
            logger.warning("%d stars lack one of the model's abundances and are not embedded",
                           (~ok).sum())
    else:
        if not args.spectra:
            raise SpecsiftInputError("give --spectra to embed")
        ids, embedding = embed_files(model, config, args.spectra, n_dims=args.n_dims)
    table = Table({"APOGEE_ID": ids.astype(str), "EMBEDDING": embedding.astype(np.float32)})
    table.meta["MODEL"] = str(args.model)
    with atomic_path(args.out) as tmp:
        table.write(tmp, format="fits", overwrite=True)
    logger.info("wrote %d embeddings (%d dimensions) to %s", len(table),
                table["EMBEDDING"].shape[1], args.out)
    return 0


def run_evaluate(args) -> int:
    from ..metric.doppelganger import WIDE_CLUSTER
    from ..metric.fitting import evaluate_rsca
    from ..metric.persist import load_model

    model, config = load_model(args.model, device=args.device)
    result = evaluate_rsca(model, config, args.allstar, args.occam, args.spectra,
                           n_dims=args.n_dims, empty="skip" if args.skip_empty else "raise")
    out = dict(result.to_dict(), cross_validation="leave-one-cluster-out", n_dims=args.n_dims,
               model=str(args.model), plate_robust=model.plate_robust)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(out, indent=1))
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    width = max(len(k) for k in result.per_cluster)
    spread = result.sibling_radius_ratio()
    for name, rate in sorted(result.per_cluster.items()):
        print(f"{name:<{width}}  {result.sizes[name]:3d} members  rate {rate:.4f}  "
              f"sibling radius {spread[name]:4.1f}x the median cluster's")
    print(f"global doppelganger rate (LOCO, weighted by size): {result.global_rate:.4f} "
          f"({result.n_field} field stars, {result.n_members} members)")
    wide = result.wide_clusters()
    if wide:
        listed = ", ".join(f"{name} ({ratio:.0f}x)" for name, ratio in sorted(wide.items()))
        print(f"siblings spread {WIDE_CLUSTER:g}x or more wider than in the median cluster: "
              f"{listed}. The metric fitted on the other clusters does not bring these "
              "siblings together, often because their members are of a type the other "
              "clusters lack; read their rates with that in mind (docs/rsca.md)")
    plates = result.plates
    low, high = plates.field_rate_ratio_interval()
    print(f"plate-safe rate (field stars from other plates only): {result.plate_safe_rate:.4f}")
    print(f"sibling distance, pairs on one plate / on two plates: "
          f"{plates.same_plate_sibling_ratio:.3f} (Mann-Whitney p = {plates.sibling_p_value:.2g},"
          f" {plates.n_sibling_pairs[0]} / {plates.n_sibling_pairs[1]} pairs)")
    print(f"field stars inside the sibling radius, member's plate / other plates: "
          f"{plates.same_plate_field_rate:.4f} / {plates.other_plate_field_rate:.4f} = "
          f"{plates.same_vs_other_plate_field_rate:.2f} (95% interval {low:.2f}-{high:.2f}; "
          f"{plates.n_close_field_pairs} of {plates.n_field_pairs[0]} same-plate pairs, from "
          f"{plates.n_close_field_stars} distinct field stars)")
    return 0


def run_report(args) -> int:
    from ..metric.experiments import run_report as report
    from ..plots.rsca import draw_report

    results = report(args.allstar, args.occam, args.spectra, args.out, truth=args.truth,
                     n_components=args.n_components, seed=args.seed, only=args.only,
                     device=args.device, plate_robust=not args.paper)
    for path in [*results.tables, *draw_report(results.figures)]:
        print(path)
    return 0


def _search(args, ids):
    from ..metric.persist import load_model
    from ..metric.siblings import search_from_files

    model, config = load_model(args.model, device=args.device)
    return search_from_files(model, config, args.allstar, args.spectra, require=ids)


def run_siblings(args) -> int:
    rows = _search(args, [args.star]).siblings(args.star, top=args.top)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'APOGEE_ID':<20} {'distance':>9} {'x median sibling':>17} {'P(field pair)':>14}")
    for row in rows:
        print(f"{row['APOGEE_ID']:<20} {row['DISTANCE']:9.4f} {row['SIBLING_UNITS']:17.3f} "
              f"{row['P_FIELD_PAIR']:14.2e}")
    return 0


def run_pair(args) -> int:
    answer = _search(args, args.ids).pair(*args.ids)
    if args.json:
        print(json.dumps(answer, indent=1))
        return 0
    verdict = "alike" if answer["alike"] else "not alike"
    print(f"{answer['APOGEE_ID_1']} and {answer['APOGEE_ID_2']}: {verdict} (distance "
          f"{answer['SIBLING_UNITS']:.2f} median sibling distances; a random field pair is this "
          f"close with probability {answer['P_FIELD_PAIR']:.2e})")
    return 0
