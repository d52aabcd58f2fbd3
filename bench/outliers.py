"""Outlier benchmark: mock DESI survey -> stores -> galaxy/star models -> catalogue -> truth.

Runs the whole pipeline through the ``specsift`` CLI (the same commands a user types), then reads
``truth.fits`` (evaluation only, with :mod:`specsift.evaluation`, as the demo's card) and reports:

* ROC AUC of the catalogue ranking (RANK; OUTLIER_SCORE = -LOGP_GALAXY) for injected anomalies
  against normal galaxies of the BGS sample, overall and per anomaly family;
* the fraction of true anomalies among the top 1% (and the top 20) of the BGS sample by rank;
* star/galaxy accuracy on clean galaxies and on MWS stars, and the fraction of the
  ``star_contaminant`` family called stars, for each likelihood-ratio rule;
* scoring throughput (spectra/s) and peak memory (RSS) for two store sizes, to show that memory
  does not grow with the number of objects.

Usage::

    .venv/bin/python bench/outliers.py --small          # 3000 galaxies + 1500 stars, ~10 min
    .venv/bin/python bench/outliers.py                  # 20000 + 8000 (reuses /tmp/mock_desi_full)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from reference import ROOT, checkout, specsift  # noqa: E402  (bench/ is on sys.path)

sys.path.insert(0, str(ROOT))

from specsift.catalog import RULES, StarGalaxyRule, read_catalog  # noqa: E402
from specsift.evaluation import roc_auc  # noqa: E402
from specsift.evaluation.mock_desi import (match_truth, outlier_metrics,  # noqa: E402
                                           star_galaxy_metrics)

def build(args, work: Path, log: Path) -> dict:
    """Mock data, three stores, two models with flows; steps whose output exists are skipped."""
    from specsift.mocks import mock_desi

    data = Path(args.data) if args.data else work / "mock_desi"
    if not (data / "truth.fits").exists():
        print(f"generating mock DESI ({args.n_galaxies} galaxies, {args.n_stars} stars) in {data}")
        mock_desi(data, n_galaxies=args.n_galaxies, n_stars=args.n_stars, outlier_frac=0.01,
                  seed=1, sample="both", verbose=False)
    timings = {}
    common = ["--seed", str(args.seed), "--device", args.device]
    for sample in ("bgs", "mws", "all"):
        store = work / "stores" / sample
        reuse = getattr(args, f"{sample}_store")
        if reuse and not store.exists():
            store.parent.mkdir(parents=True, exist_ok=True)
            store.symlink_to(Path(reuse).resolve())
        if not store.exists():
            timings[f"ingest_{sample}"] = specsift(
                ROOT, ["ingest", "--survey", "desi", "--sample", sample, str(data), "--out",
                       str(store)], log)
    for sample, name in (("bgs", "galaxy"), ("mws", "star")):
        model = work / "models" / name
        epochs = ["--epochs", str(args.epochs)] if args.epochs else []
        reuse = getattr(args, f"{name}_ae")
        if reuse and not model.exists():  # a copy: the flow is added without touching the source
            model.mkdir(parents=True)
            for file in ("config.json", "autoencoder.safetensors"):
                shutil.copy(Path(reuse) / file, model / file)
        if not (model / "autoencoder.safetensors").exists():
            timings[f"train_ae_{name}"] = specsift(
                ROOT, ["train-ae", str(work / "stores" / sample), "--out", str(model), *common,
                       *epochs], log)
        if not (model / "flow.safetensors").exists():
            timings[f"train_flow_{name}"] = specsift(
                ROOT, ["train-flow", str(work / "stores" / sample), "--model", str(model),
                       *common], log)
    return {"data": str(data), "timings": timings}


def score(work: Path, store: str, out: Path, args, log: Path, src: Path = ROOT) -> dict:
    """Score a store with the code in ``src`` (this checkout, or a reference commit's)."""
    out.unlink(missing_ok=True)
    run = specsift(src, ["score", str(work / "stores" / store), "--galaxy-model",
                         str(work / "models/galaxy"), "--star-model", str(work / "models/star"),
                         "--out", str(out), "--device", args.device, "--batch-size",
                         str(args.batch_size)], log)
    table, _ = read_catalog(out)
    run.update(n_objects=len(table), spectra_per_s=len(table) / run["seconds"])
    return run


def evaluate(catalog: Path, truth_path: Path) -> dict:
    """Compare the catalogue with truth.fits (matched on TARGETID)."""
    table, metadata = read_catalog(catalog)
    truth = match_truth(table, truth_path)
    outliers = outlier_metrics(table, truth)
    bgs = truth.bgs
    result = {"n_objects": len(table), "n_bgs": outliers["n_bgs"],
              "n_anomalies": outliers["n_anomalies"],
              "n_truth_not_in_catalog": truth.n_truth_not_in_catalog,
              "n_anomalies_not_in_catalog": truth.n_anomalies_not_in_catalog,
              "n_unscored": int(np.isnan(np.asarray(table["OUTLIER_SCORE"], float)).sum()),
              "auc": outliers["auc"],
              "top1pct_anomaly_fraction": outliers["top_fraction_anomaly_fraction"],
              "top20_anomaly_fraction": outliers["top_anomaly_fraction"],
              "auc_per_family": outliers["auc_per_family"], "auc_chi2_galaxy": roc_auc(
                  np.nan_to_num(np.asarray(table["CHI2_GALAXY"], float), nan=np.inf)[bgs],
                  truth.outlier[bgs])}
    if "OUTLIER_QVALUE" in table.colnames:
        selected = bgs & (np.nan_to_num(np.asarray(table["OUTLIER_QVALUE"], float), nan=1.0) < 0.1)
        result["q_below_0.1"] = {"n": int(selected.sum()), "anomaly_fraction": float(
            truth.outlier[selected].mean()) if selected.any() else float("nan")}
    if "SNR" in table.colnames:  # the model's fit of the brightest normal galaxies
        normal, snr = truth.clean_galaxies, np.asarray(table["SNR"], float)
        fit = "CHI2_REFINED" if "CHI2_REFINED" in table.colnames else "CHI2_GALAXY"
        bright = np.flatnonzero(normal)[np.argsort(-snr[normal])][:max(1, int(0.02 * normal.sum()))]
        result["brightest_2pct_normal"] = {
            "n": len(bright), "median_snr": float(np.median(snr[bright])),
            "fit": fit, "median_reduced_chi2": float(np.median(np.asarray(table[fit], float)[bright]))}
    scores = dict(chi2_galaxy=table["CHI2_GALAXY"], chi2_star=table["CHI2_STAR"],
                  npix_galaxy=table["NPIX_GALAXY"], npix_star=table["NPIX_STAR"],
                  logp_galaxy=table["LOGP_GALAXY"], logp_star=table["LOGP_STAR"])
    result["star_galaxy"] = {}
    for rule in RULES:
        is_star = StarGalaxyRule(rule, float(metadata.get("STARTHR", 0.0))).predict(**scores)
        sg = star_galaxy_metrics(is_star, truth)
        result["star_galaxy"][rule] = {
            "clean_galaxies_correct": sg["galaxies_correct"], "stars_correct": sg["stars_correct"],
            "clean_accuracy": sg["accuracy"],
            "star_contaminant_as_star": sg["star_contaminant_as_star"]}
    result["catalog_rule"] = metadata.get("STARRULE")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="3000 galaxies + 1500 stars")
    parser.add_argument("--data", default=None, help="existing mock_desi folder (sample both)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (stores, models)")
    parser.add_argument("--epochs", type=int, default=None, help="autoencoder epochs")
    for sample in ("bgs", "mws", "all"):
        parser.add_argument(f"--{sample}-store", default=None,
                            help=f"reuse an ingested --sample {sample} store of the same data")
    for name in ("galaxy", "star"):
        parser.add_argument(f"--{name}-ae", default=None,
                            help=f"reuse a trained {name} autoencoder directory (copied)")
    parser.add_argument("--reference", default=None, metavar="COMMIT",
                        help="also score with this commit's code (e.g. a1f3169) "
                             "and report the throughput ratio (on a store that commit ingests)")
    parser.add_argument("--reference-data", default=None,
                        help="mock folder for that side-by-side store (default: --data)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/outliers.json")
    args = parser.parse_args()
    args.n_galaxies, args.n_stars = (3000, 1500) if args.small else (20000, 8000)
    if args.data is None and not args.small and Path("/tmp/mock_desi_full/truth.fits").exists():
        args.data = "/tmp/mock_desi_full"
    work = args.work or Path(f"/tmp/specsift_bench_outliers{'_small' if args.small else ''}")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "pipeline.log"
    built = build(args, work, log)
    runs = {"all": score(work, "all", work / "catalog.parquet", args, log),
            "mws": score(work, "mws", work / "catalog_mws.parquet", args, log)}
    if args.reference:  # one store the reference can read, the same models, both codes
        src = checkout(args.reference, work)
        name = f"all_{args.reference}"
        if not (work / "stores" / name).exists():
            specsift(src, ["ingest", "--survey", "desi", "--sample", "all",
                           str(args.reference_data or built["data"]), "--out",
                           str(work / "stores" / name)], log)
        runs[f"{name}_store_this"] = score(work, name, work / "catalog_this.parquet", args, log)
        runs[f"{name}_store_reference"] = score(work, name, work / "catalog_reference.parquet",
                                                args, log, src)
        runs["throughput_ratio"] = (runs[f"{name}_store_this"]["spectra_per_s"]
                                    / runs[f"{name}_store_reference"]["spectra_per_s"])
    result = {"config": {"small": args.small, "n_galaxies": args.n_galaxies,
                         "n_stars": args.n_stars, "epochs": args.epochs, "device": args.device,
                         "data": built["data"]},
              "pipeline_timings": built["timings"], "scoring": runs,
              "evaluation": evaluate(work / "catalog.parquet", Path(built["data"]) / "truth.fits")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    ev = result["evaluation"]
    print(f"objects scored: {ev['n_objects']} (BGS {ev['n_bgs']}, anomalies {ev['n_anomalies']}, "
          f"unscored {ev['n_unscored']}; not ingested: {ev['n_truth_not_in_catalog']} objects, "
          f"{ev['n_anomalies_not_in_catalog']} of them anomalies)")
    print(f"outlier ROC AUC (BGS): {ev['auc']:.4f}   [bar >= 0.92]   (CHI2_GALAXY alone: "
          f"{ev['auc_chi2_galaxy']:.4f})")
    print(f"true anomalies among the top 1%: {ev['top1pct_anomaly_fraction']:.3f}   [bar >= 0.6]; "
          f"top 20: {ev['top20_anomaly_fraction']:.2f}")
    if "q_below_0.1" in ev:
        q = ev["q_below_0.1"]
        print(f"q < 0.1: {q['n']} BGS objects, {q['anomaly_fraction']:.3f} true anomalies "
              "[bar >= 0.8]")
    if "brightest_2pct_normal" in ev:
        b = ev["brightest_2pct_normal"]
        print(f"brightest 2% of normal galaxies (median S/N {b['median_snr']:.1f}): median reduced "
              f"chi2 {b['median_reduced_chi2']:.3f} [bar <= 1.1]")
    for name, fam in ev["auc_per_family"].items():
        print(f"  {name:22s} n={fam['n']:4d}  AUC {fam['auc']:.4f}")
    for rule, sg in ev["star_galaxy"].items():
        mark = " (catalogue)" if rule == ev["catalog_rule"] else ""
        print(f"star/galaxy rule {rule:10s}{mark}: clean accuracy {sg['clean_accuracy']:.4f} "
              f"(galaxies {sg['clean_galaxies_correct']:.4f}, stars {sg['stars_correct']:.4f}); "
              f"star_contaminant as star {sg['star_contaminant_as_star']:.3f}")
    for name, run in runs.items():
        if name == "throughput_ratio":
            print(f"throughput this checkout / {args.reference}: {run:.2f}")
            continue
        print(f"scoring store '{name}': {run['n_objects']} spectra in {run['seconds']:.1f} s = "
              f"{run['spectra_per_s']:.1f} spectra/s, peak RSS {run['peak_rss_mb']:.0f} MB")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
