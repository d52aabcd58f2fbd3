"""``specsift demo``: the whole pipeline on built-in mock data, as a new user would run it.

Every step goes through the same CLI verbs a user types, so the demo doubles as an end-to-end
check. A step whose output already exists is skipped, so an interrupted demo resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from ..models.defaults import AUTOENCODER
from ._defaults import add_device_option

__all__ = ["register", "run_side_by_side", "available_cores"]

logger = logging.getLogger("specsift.demo")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on a small mock survey (CPU, ~8 minutes on 2 cores)",
        description="Generate a mock DESI bright-time survey and a mock APOGEE set, then ingest, "
                    "train galaxy and star autoencoders and flows, score, draw the gallery of top "
                    "outliers of the galaxy sample and fit and evaluate RSCA; last, an evaluation "
                    "step compares the outputs with the mocks' truth files and prints and writes "
                    "the card OUT/card.json. Rerunning skips finished steps.")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    parser.add_argument("--n-galaxies", type=int, default=3000)
    parser.add_argument("--n-stars", type=int, default=3000,
                        help="mock MWS stars (3000: the star model's validation chi2 settles "
                             "below 1.5 only from about 2,000 training stars; docs/autoencoder.md)")
    parser.add_argument("--n-field", type=int, default=2000, help="mock APOGEE field giants")
    parser.add_argument("--galaxy-epochs", type=int, default=20,
                        help="galaxy autoencoder epochs (20: the demo's 2,122 training galaxies "
                             "take 34 steps an epoch, and at train-ae's 16 one galaxy in 17 was "
                             "called a star; docs/autoencoder.md)")
    parser.add_argument("--galaxy-phase1-fraction", type=float, default=0.7,
                        help="share of the galaxy epochs in phase 1 (0.7: 14 of 20; a phase-2 "
                             "epoch takes 1.6x as long and costs fidelity)")
    parser.add_argument("--star-epochs", type=int, default=AUTOENCODER.epochs,
                        help=f"star autoencoder epochs (train-ae's {AUTOENCODER.epochs})")
    parser.add_argument("--seed", type=int, default=0)
    add_device_option(parser)
    parser.set_defaults(func=run)


class _Step(NamedTuple):
    name: str
    output: Path
    argv: list[str]


def _step(step: _Step, label: str = "", threads: int | None = None) -> None:
    """Run one CLI verb unless its output is already there; stop the demo if it fails.

    With ``threads`` the verb runs in a child process limited to that many CPU threads, its
    log lines relayed with the prefix ``[label]``; without, in this process."""
    from .main import main

    if step.output.exists():
        logger.info("%s: %s exists, skipping", step.name, step.output)
        return
    logger.info("%s: specsift %s", step.name, " ".join(step.argv))
    start = time.perf_counter()
    code = main(step.argv) if threads is None else _run_child(step.argv, label, threads)
    if code:
        raise SystemExit(f"demo step '{step.name}' failed (exit {code}); fix it and rerun "
                         "`make demo`")
    logger.info("%s: done in %.1f s", step.name, time.perf_counter() - start)


def _run_child(argv: list[str], label: str, threads: int) -> int:
    """``specsift ARGV`` in a child process with ``threads`` CPU threads; its exit status."""
    env = {**os.environ, "SPECSIFT_QUIET": "1",
           **{name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS")}}
    with subprocess.Popen([sys.executable, "-m", "specsift.cli.main", *argv], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
        for line in child.stdout:
            sys.stderr.write(f"[{label}] {line}")
    return child.returncode


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_side_by_side(pipelines: dict[str, list[_Step]], cores: int | None = None) -> None:
    """Run independent pipelines (each a list of steps, in order) at the same time, each step in
    a child process with an equal share of the cores among the pipelines still running; on one
    core, one after the other in this process.

    Why: training a model keeps about one core busy however many threads torch has (the demo ran
    at 99% CPU on 2 cores), so the galaxy and star models train together in the time of the
    longer one; a step that starts once the other pipeline is done gets all the cores
    (docs/autoencoder.md)."""
    cores = available_cores() if cores is None else cores
    if cores < 2 or len(pipelines) < 2:
        for steps in pipelines.values():
            for step in steps:
                _step(step)
        return
    running, lock = [len(pipelines)], threading.Lock()

    def run_pipeline(label: str, steps: list[_Step]) -> None:
        try:
            for step in steps:
                with lock:
                    threads = max(1, cores // running[0])
                _step(step, label, threads)
        finally:
            with lock:
                running[0] -= 1

    with ThreadPoolExecutor(len(pipelines)) as pool:
        futures = [pool.submit(run_pipeline, label, steps) for label, steps in pipelines.items()]
        for future in futures:
            future.result()


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
    epochs = {"galaxy": args.galaxy_epochs, "star": args.star_epochs}
    stores, models = out / "stores", out / "models"

    def ingest(sample: str) -> _Step:
        return _Step(f"ingest {sample}", stores / sample,
                     ["ingest", "--survey", "desi", "--sample", sample, str(desi),
                      "--out", str(stores / sample)])
    rsca = out / "rsca"
    inputs = ["--allstar", str(apogee / "allStar-mock.fits"),
              "--occam", str(apogee / "occam_member-mock.fits"),
              "--spectra", str(apogee / "spectra-mock.fits")]
    pipelines = {}
    for sample, name in (("bgs", "galaxy"), ("mws", "star")):
        model = models / name
        pipelines[name] = [
            ingest(sample),
            _Step(f"train {name} autoencoder", model / "autoencoder.safetensors",
                  ["train-ae", str(stores / sample), "--out", str(model), *common,
                   "--epochs", str(epochs[name]),
                   *(["--phase1-fraction", str(args.galaxy_phase1_fraction)]
                     if name == "galaxy" else [])]),
            _Step(f"train {name} flow", model / "flow.safetensors",
                  ["train-flow", str(stores / sample), "--model", str(model), *common,
                   *(["--no-outlier-calibration"] if name == "star" else [])])]
    # RSCA needs neither autoencoder, and the store to score is needed only once both models
    # are trained: they follow the star model, which trains faster, off the galaxy's path
    pipelines["star"] += [
        _Step("rsca fit", rsca / "model", ["rsca", "fit", *inputs, "--out", str(rsca / "model")]),
        _Step("rsca evaluate", rsca / "evaluation.json",
              ["rsca", "evaluate", str(rsca / "model"), *inputs, "--skip-empty",
               "--out", str(rsca / "evaluation.json")]),
        ingest("all")]
    run_side_by_side(pipelines)
    catalog = out / "catalog.parquet"
    # a child process of its own: scoring after the training ran at 55-91 s in this process,
    # 50 s in a fresh one
    _step(_Step("score", catalog,
                ["score", str(stores / "all"), "--galaxy-model", str(models / "galaxy"),
                 "--star-model", str(models / "star"), "--out", str(catalog),
                 "--device", args.device]), "score", available_cores())
    _step(_Step("gallery", out / "gallery" / "index.html",
                ["gallery", str(catalog), "--top", "20", "--sample", "bgs",
                 "--out", str(out / "gallery")]))

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
