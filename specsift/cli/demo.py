"""``specsift demo``: the whole pipeline on built-in mock data, as a new user would run it.

Every step goes through the same CLI verbs a user types, so the demo doubles as an end-to-end
check. A step whose output already exists is skipped, so an interrupted demo resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from ._defaults import add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.demo")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on a small mock survey (CPU, ~10 minutes)",
        description="Generate a mock DESI bright-time survey and a mock APOGEE set, then ingest, "
                    "train galaxy and star autoencoders and flows, score, draw the gallery of top "
                    "outliers of the galaxy sample and fit and evaluate RSCA; last, an evaluation "
                    "step compares the outputs with the mocks' truth files and prints and writes "
                    "the card OUT/card.json. Rerunning skips finished steps.")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    parser.add_argument("--n-galaxies", type=int, default=3000)
    parser.add_argument("--n-stars", type=int, default=1500)
    parser.add_argument("--n-field", type=int, default=2000, help="mock APOGEE field giants")
    parser.add_argument("--epochs", type=int, default=None,
                        help="autoencoder epochs (default: train-ae's)")
    parser.add_argument("--seed", type=int, default=0)
    add_device_option(parser)
    parser.set_defaults(func=run)


def _step(name: str, output: Path, argv: list[str]) -> None:
    """Run one CLI verb unless its output is already there; stop the demo if it fails."""
    from .main import main

    if output.exists():
        logger.info("%s: %s exists, skipping", name, output)
        return
    logger.info("%s: specsift %s", name, " ".join(argv))
    start = time.perf_counter()
    code = main(argv)
    if code:
        raise SystemExit(f"demo step '{name}' failed (exit {code}); fix it and rerun `make demo`")
    logger.info("%s: done in %.1f s", name, time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    from ..mocks import mock_apogee, mock_desi

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    desi, apogee = out / "mock_desi", out / "mock_apogee"
    resumed = (desi / "truth.fits").exists()  # then the time of earlier runs is not counted
    if not (desi / "truth.fits").exists():
        logger.info("writing a mock DESI survey (%d galaxies, %d stars) to %s",
                    args.n_galaxies, args.n_stars, desi)
        mock_desi(desi, n_galaxies=args.n_galaxies, n_stars=args.n_stars, seed=1, verbose=False)
    if not (apogee / "truth.fits").exists():
        logger.info("writing a mock APOGEE set (%d field giants, 22 clusters) to %s",
                    args.n_field, apogee)
        mock_apogee(apogee, n_field=args.n_field, n_clusters=22, seed=1, verbose=False)

    common = ["--seed", str(args.seed), "--device", args.device]
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    stores, models = out / "stores", out / "models"
    for sample in ("bgs", "mws", "all"):
        _step(f"ingest {sample}", stores / sample,
              ["ingest", "--survey", "desi", "--sample", sample, str(desi), "--out", str(stores / sample)])
    for sample, name in (("bgs", "galaxy"), ("mws", "star")):
        model = models / name
        _step(f"train {name} autoencoder", model / "autoencoder.safetensors",
              ["train-ae", str(stores / sample), "--out", str(model), *common, *epochs])
        _step(f"train {name} flow", model / "flow.safetensors",
              ["train-flow", str(stores / sample), "--model", str(model), *common,
               *(["--no-outlier-calibration"] if name == "star" else [])])
    catalog = out / "catalog.parquet"
    _step("score", catalog, ["score", str(stores / "all"), "--galaxy-model", str(models / "galaxy"),
                             "--star-model", str(models / "star"), "--out", str(catalog),
                             "--device", args.device])
    _step("gallery", out / "gallery" / "index.html",
          ["gallery", str(catalog), "--top", "20", "--sample", "bgs",
           "--out", str(out / "gallery")])

    rsca = out / "rsca"
    inputs = ["--allstar", str(apogee / "allStar-mock.fits"),
              "--occam", str(apogee / "occam_member-mock.fits"),
              "--spectra", str(apogee / "spectra-mock.fits")]
    _step("rsca fit", rsca / "model", ["rsca", "fit", *inputs, "--out", str(rsca / "model")])
    _step("rsca evaluate", rsca / "evaluation.json",
          ["rsca", "evaluate", str(rsca / "model"), *inputs, "--skip-empty", "--out", str(rsca / "evaluation.json")])

    _summarise(out, catalog, rsca / "evaluation.json", time.perf_counter() - start)
    _evaluate(out, desi, apogee, start, resumed)
    return 0


def _evaluate(out: Path, desi: Path, apogee: Path, start: float, resumed: bool) -> None:
    """The evaluation step, the only one that reads the mocks' truth files: print the card
    (:mod:`specsift.evaluation.card`) and write it to ``OUT/card.json``."""
    from ..evaluation.card import evaluation_card, format_card, write_card

    logger.info("evaluation: comparing the outputs with the mocks' truth files (%s, %s)",
                desi / "truth.fits", apogee / "truth.fits")
    models, rsca = out / "models", out / "rsca"
    card = evaluation_card(
        catalog=out / "catalog.parquet", desi_truth=desi / "truth.fits",
        galaxy_model=models / "galaxy", star_model=models / "star",
        rsca_model=rsca / "model", rsca_evaluation=rsca / "evaluation.json",
        apogee={"allstar": apogee / "allStar-mock.fits",
                "occam": apogee / "occam_member-mock.fits",
                "spectra": apogee / "spectra-mock.fits", "truth": apogee / "truth.fits"},
        seconds=time.perf_counter() - start, resumed=resumed,
        stores={"galaxy": out / "stores" / "bgs", "star": out / "stores" / "mws"})
    path = write_card(card, out / "card.json")
    print("\n" + format_card(card))
    print(f"card: {path}")


def _summarise(out: Path, catalog: Path, rsca_json: Path, seconds: float) -> None:
    """Print what a user should look at first: the top outliers and the doppelganger rate."""
    import numpy as np

    from ..catalog import read_catalog
    from ..catalog.samples import in_sample, sample_config

    table, metadata = read_catalog(catalog)
    bgs = table[in_sample(table, "bgs", sample_config(metadata), catalog)]
    rows = bgs[np.argsort(bgs["RANK"], kind="stable")[:10]]
    print(f"\nspecsift demo finished in {seconds / 60:.1f} min; outputs in {out}/")
    print(f"catalogue: {catalog} ({len(table)} objects, {int(np.sum(table['IS_STAR']))} "
          f"classified as stars; {len(bgs)} in the BGS galaxy sample)")
    print("top outliers of the BGS sample:")
    print("               RANK  TARGETID              Z       CHI2_GALAXY  OUTLIER_SCORE")
    for row in rows:
        print(f"               {row['RANK']:4d}  {row['TARGETID']:<20d}  {row['Z']:.4f}  "
              f"{row['CHI2_GALAXY']:10.2f}  {row['OUTLIER_SCORE']:12.2f}")
    print(f"gallery: {out / 'gallery' / 'index.html'}")
    result = json.loads(rsca_json.read_text())
    print(f"RSCA doppelganger rate (leave-one-cluster-out): {result['global_rate']:.4f} over "
          f"{result['n_members']} cluster members and {result['n_field']} field stars")
