"""``specsift rsca``: learn, apply and evaluate the RSCA chemical-similarity metric.

Sub-verbs: ``fit`` (catalogues + spectra -> model folder), ``transform`` (model + spectra ->
embedding FITS), ``evaluate`` (cross-validated doppelganger rates) and ``report`` (the paper's
experiments: tables and figures).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..atomic import atomic_path

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
    parser.add_argument("--device", default="auto", help="torch device for the PPCA (auto)")


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
    fit.add_argument("--n-components", type=int, default=30, help="PPCA dimensions K (30)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--weighted", action="store_true",
                     help="error-weighted PPCA (per-pixel noise sigma^2 + err^2)")
    fit.add_argument("--error-threshold", type=float, default=0.05,
                     help="censor pixels with a larger error (0.05)")
    fit.add_argument("--ism-windows", choices=("detect", "none"), default="detect",
                     help="censor interstellar windows found in high-A_K residuals (detect)")
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
    report.add_argument("--n-components", type=int, default=30)
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--only", nargs="+", default=None,
                        help="run only these experiments (table1 fig2 fig4 fig5 fig9 appendix_a)")
    report.set_defaults(func=run_report)


def run_fit(args) -> int:
    import numpy as np

    from ..errors import SpecsiftInputError
    from ..metric.dataset import load_rsca_data
    from ..metric.ism_windows import apply_windows, find_ism_windows
    from ..metric.persist import save_model
    from ..metric.rsca import RSCA
    from ..preprocess.stellar_samples import SampleConfig
    from ..runtime import seed_everything

    seed_everything(args.seed)
    species = _species(args.abundances) if args.abundances else None
    if species is None and not args.spectra:
        raise ValueError("give --spectra, or --abundances to fit on abundance vectors")
    config = SampleConfig()
    data = load_rsca_data(args.allstar, args.occam, spectra=args.spectra, abundances=species,
                          config=config, error_threshold=args.error_threshold,
                          with_errors=args.weighted)
    windows = []
    if species is None and args.ism_windows == "detect":
        _, field_ak = data.samples.column("AK_TARG")
        try:
            windows = find_ism_windows(data.field, field_ak, data.wave,
                                       random_state=args.seed).windows
        except SpecsiftInputError as error:  # too few high-extinction stars to tell
            logger.warning("no interstellar windows censored: %s", error)
        for matrix in (data.field, data.members):
            apply_windows(matrix, data.wave, windows)
    model = RSCA(n_components=args.n_components, compress=species is None,
                 weighted=args.weighted, random_state=args.seed,
                 ppca_params={"device": args.device})
    model.fit(data.field, data.members, data.clusters, errors_field=data.field_errors,
              errors_members=data.member_errors)
    extra = {"kind": "abundances" if species else "spectra", "species": list(species or []),
             "error_threshold": args.error_threshold, "ism_windows": windows,
             "sample_config": config.to_dict(),
             "wave": None if data.wave is None else np.asarray(data.wave).tolist(),
             "n_field": int(len(data.field)), "n_members": int(len(data.members)),
             "clusters": sorted(set(data.clusters.tolist())),
             "sigma_clust": model.sigma_clust_.tolist(), "scaling": model.scaling_.tolist()}
    save_model(model, args.out, extra)
    logger.info("RSCA model written to %s (%d field stars, %d members, %d dimensions "
                "suppressed)", args.out, len(data.field), len(data.members),
                model.metric_.n_suppressed_)
    return 0


def run_transform(args) -> int:
    import numpy as np
    from astropy.table import Table

    from ..io.apogee import iter_batches
    from ..io.catalogs import MISSING, abundance_matrix, read_allstar
    from ..metric.dataset import censor, chip_pixels
    from ..metric.persist import load_model

    model, config = load_model(args.model, device=args.device)
    ids, parts = [], []
    if config["kind"] == "abundances":
        if not args.allstar:
            raise ValueError("this model was fitted on abundances: give --allstar")
        table = read_allstar(args.allstar)
        values = abundance_matrix(table, config["species"])
        ok = (values > MISSING / 2).all(1)
        ids.append(np.asarray(table["APOGEE_ID"])[ok])
        parts.append(model.transform(values[ok], n_dims=args.n_dims))
        if (~ok).any():
            logger.warning("%d stars lack one of the model's abundances and are not embedded",
                           (~ok).sum())
    else:
        if not args.spectra:
            raise ValueError("give --spectra to embed")
        for batch in iter_batches(args.spectra, error_threshold=config["error_threshold"]):
            pixels = chip_pixels(len(batch.wave))
            wave = batch.wave[pixels]
            if len(wave) != len(config["wave"]) or not np.allclose(wave, config["wave"]):
                raise ValueError(f"{batch.meta['FILENAME'][0]}: wavelength grid differs from "
                                 "the model's")
            flux, errors = censor(batch, pixels, config["ism_windows"], model.weighted)
            ids.append(batch.ids)
            parts.append(model.transform(flux, n_dims=args.n_dims, errors=errors))
    table = Table({"APOGEE_ID": np.concatenate(ids).astype(str),
                   "EMBEDDING": np.concatenate(parts).astype(np.float32)})
    table.meta["MODEL"] = str(args.model)
    with atomic_path(args.out) as tmp:
        table.write(tmp, format="fits", overwrite=True)
    logger.info("wrote %d embeddings (%d dimensions) to %s", len(table),
                table["EMBEDDING"].shape[1], args.out)
    return 0


def run_evaluate(args) -> int:
    from ..metric.dataset import load_rsca_data
    from ..metric.doppelganger import loco_evaluate
    from ..metric.persist import load_model
    from ..metric.rsca import LatentMetric
    from ..preprocess.stellar_samples import SampleConfig

    model, config = load_model(args.model, device=args.device)
    sample_config = SampleConfig.from_dict(config["sample_config"])
    species = config["species"] if config["kind"] == "abundances" else None
    if species is None and not args.spectra:
        raise ValueError("this model was fitted on spectra: give --spectra")
    data = load_rsca_data(args.allstar, args.occam, spectra=args.spectra, abundances=species,
                          config=sample_config, error_threshold=config["error_threshold"],
                          windows=config["ism_windows"], with_errors=model.weighted)
    z_field = model.latents(data.field, data.field_errors)
    z_members = model.latents(data.members, data.member_errors)
    result = loco_evaluate(z_field, z_members, data.clusters, *data.rv_ak(),
                           metric=LatentMetric(model.whiten, model.rotate,
                                               model.relative_scaling),
                           n_dims=args.n_dims, empty="skip" if args.skip_empty else "raise")
    out = dict(result.to_dict(), cross_validation="leave-one-cluster-out", n_dims=args.n_dims,
               model=str(args.model))
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(out, indent=1))
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        width = max(len(k) for k in result.per_cluster)
        for name, rate in sorted(result.per_cluster.items()):
            print(f"{name:<{width}}  {result.sizes[name]:3d} members  rate {rate:.4f}")
        print(f"global doppelganger rate (LOCO, weighted by size): {result.global_rate:.4f} "
              f"({result.n_field} field stars, {result.n_members} members)")
    return 0


def run_report(args) -> int:
    from ..metric.experiments import run_report as report

    written = report(args.allstar, args.occam, args.spectra, args.out, truth=args.truth,
                     n_components=args.n_components, seed=args.seed, only=args.only,
                     device=args.device)
    for path in written:
        print(path)
    return 0
