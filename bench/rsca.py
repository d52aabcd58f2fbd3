"""Benchmark: cross-validated doppelganger rates of RSCA and baselines on the mock APOGEE set.

Rates (leave-one-cluster-out where something is trained on the clusters, plain otherwise):
RSCA on spectra (K=30, all dimensions and the best top-N), RSCA with the error-weighted PPCA,
plain PCA distances (PPCA scores, no metric), raw measured abundances, RSCA on the measured
abundances, and the oracle from the true abundances (truth.fits; the floor).

The plate check (issue #13, the paper's App. C): for the paper's recipe and the plate-robust
default, and for spectra, measured abundances and true abundances through the same LOCO steps,
the LOCO rate, the plate-safe rate, the same/different-plate sibling ratio (Mann-Whitney p) and
the same/other-plate field rate with its pair counts and a 95% interval. Plates come from the
allStar; the truth file is read only for the true-abundance rows and the oracle (evaluation).

    .venv/bin/python bench/rsca.py [--small] [--mock DIR] [--no-weighted]

Without ``--mock`` it uses /tmp/mock_apogee_full, generating it once (20,000 field stars,
22 clusters, seed 1: ~45 s, 1.4 GB) if absent; ``--small`` generates 2,000 field stars in a
temporary folder instead. Results: printed and written to ``bench/results/rsca.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from specsift.atomic import atomic_path
from specsift.metric import RSCA
from specsift.metric.dataset import load_rsca_data
from specsift.metric.experiments import build_context, oracle_latents
from specsift.metric.fitting import field_obs
from specsift.metric.rsca import LatentMetric
from specsift.mocks import mock_apogee
from specsift.preprocess.stellar_samples import DEFAULT_SPECIES, SampleConfig

FULL_MOCK = Path("/tmp/mock_apogee_full")
RECIPES = {"paper": False, "plate_robust": True}   # name -> LatentMetric(plate_robust=...)


def ensure_mock(small: bool, folder: str | None) -> Path:
    if folder:
        return Path(folder)
    if small:
        out = Path(tempfile.mkdtemp(prefix="specsift-rsca-bench-"))
        mock_apogee(out, n_field=2000, n_clusters=22, seed=1, verbose=False)
        return out
    if not (FULL_MOCK / "summary.json").exists():
        mock_apogee(FULL_MOCK, n_field=20000, n_clusters=22, seed=1, verbose=False)
    return FULL_MOCK


def plate_table(ctx, inputs: dict) -> dict:
    """{recipe: {input: LOCO result with the plate checks}}; ``inputs``: name -> (field
    latents, member latents, their RSCAData)."""
    table = {}
    for recipe, robust in RECIPES.items():
        table[recipe] = {}
        for name, (zf, zm, data) in inputs.items():
            t0 = time.time()
            result = ctx.loco(zf, zm, data, metric=LatentMetric(plate_robust=robust))
            table[recipe][name] = dict(result.to_dict(), seconds=time.time() - t0)
    return table


def print_plate_table(table: dict) -> None:
    print(f"{'recipe':<13}{'input':<20}{'LOCO':>8}{'safe':>8}{'sib s/d':>8}{'p':>9}"
          f"{'field s/o':>10}  close/pairs (stars)  95% CI")
    for recipe, rows in table.items():
        for name, r in rows.items():
            lo, hi = r["field_rate_ratio_95ci"]
            same_plate_pairs = r["field_pairs_same_other_plate"][0]
            print(f"{recipe:<13}{name:<20}{r['global_rate']:8.4f}{r['plate_safe_rate']:8.4f}"
                  f"{r['same_plate_sibling_ratio']:8.3f}{r['same_plate_sibling_p_value']:9.1e}"
                  f"{r['same_vs_other_plate_field_rate']:10.2f}  "
                  f"{r['same_plate_close_field_pairs']:>4d}/{same_plate_pairs:<6d}"
                  f" ({r['same_plate_close_field_stars']:>3d})"
                  f"  {lo:.2f}-{hi:.2f}")


def plate_bars(table: dict) -> dict:
    """The bars of issue #13 on the robust default (spectra unless named)."""
    robust, paper = table["plate_robust"], table["paper"]
    spectra, true_rate = robust["spectra"], paper["true_abundances"]["global_rate"]
    return {
        "robust_sibling_ratio_within_0.95_1.05":
            bool(0.95 <= spectra["same_plate_sibling_ratio"] <= 1.05),
        "robust_same_plate_field_rate_at_most_2x_other":
            bool(spectra["same_vs_other_plate_field_rate"] <= 2),
        "robust_plate_safe_2x_below_rsca_abundances":
            bool(2 * spectra["plate_safe_rate"] <= robust["measured_abundances"]["global_rate"]),
        "true_abundance_rate_within_10pct_between_recipes":
            bool(abs(robust["true_abundances"]["global_rate"] - true_rate) <= 0.1 * true_rate)}


def run(mock: Path, k: int, seed: int, device: str, weighted: bool) -> dict:
    allstar, occam = mock / "allStar-mock.fits", mock / "occam_member-mock.fits"
    t0 = time.time()
    ctx = build_context(allstar, occam, mock / "spectra-mock.fits", n_components=k, seed=seed,
                        truth=mock / "truth.fits", device=device, with_errors=weighted)
    res = {"mock": str(mock), "k": k, "n_field": len(ctx.z_field),
           "n_members": len(ctx.z_members), "ppca_iterations": ctx.ppca.n_iter_,
           "ism_windows": ctx.windows.to_dict() if ctx.windows else None,
           "seconds_load_and_ppca": time.time() - t0}
    abund = load_rsca_data(allstar, occam, abundances=DEFAULT_SPECIES, config=SampleConfig())
    zf, zm = abund.field.astype(np.float64), abund.members.astype(np.float64)
    of, om = oracle_latents(ctx)
    plates = plate_table(ctx, {"spectra": (ctx.z_field, ctx.z_members, ctx.data),
                               "measured_abundances": (zf, zm, abund),
                               "true_abundances": (of, om, ctx.data)})
    res["plates"] = plates
    default = plates["plate_robust" if ctx.plate_robust else "paper"]
    res["rsca_spectra_loco"] = default["spectra"]["global_rate"]
    res["seconds_loco_all_folds"] = default["spectra"]["seconds"]
    res["rsca_spectra_per_cluster"] = default["spectra"]["per_cluster"]
    top = {n: ctx.loco(n_dims=n).global_rate for n in range(1, k + 1)}
    best = min(top, key=top.get)
    res["rsca_spectra_top_n"] = top
    res["rsca_spectra_best_top_n"] = {"n_dims": best, "loco_rate": top[best],
                                      "note": "N chosen on the same folds (optimistic)"}
    res["plain_pca_spectra"] = ctx.plain(*ctx.pca_scores()).global_rate
    res["raw_abundances"] = ctx.plain(zf, zm, abund).global_rate
    res["rsca_abundances_loco"] = default["measured_abundances"]["global_rate"]
    res["n_members_with_abundances"] = len(zm)
    res["oracle_true_abundances"] = ctx.plain(of, om).global_rate

    if weighted:
        t0 = time.time()
        model = RSCA(n_components=k, weighted=True, seed=seed,
                     ppca_params={"device": device})
        data = ctx.data
        model.fit(data.field, data.members, data.clusters, errors_field=data.field_errors,
                  errors_members=data.member_errors, field_obs=field_obs(data))
        wf = model.latents(data.field, data.field_errors)
        wm = model.latents(data.members, data.member_errors)
        res["rsca_weighted_spectra_loco"] = ctx.loco(wf, wm).global_rate
        res["seconds_weighted_ppca"] = time.time() - t0
    res["bars"] = {
        "rsca_3x_below_plain_pca": res["plain_pca_spectra"] >= 3 * res["rsca_spectra_loco"],
        "rsca_spectra_below_rsca_abundances":
            res["rsca_spectra_loco"] < res["rsca_abundances_loco"], **plate_bars(plates)}
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 field stars (quick)")
    parser.add_argument("--mock", default=None, help="an existing mock_apogee folder")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-weighted", action="store_true", help="skip the weighted PPCA")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rsca.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    mock = ensure_mock(args.small, args.mock)
    result = run(mock, args.k, args.seed, args.device, not args.no_weighted)
    print_plate_table(result["plates"])
    summary = {k: v for k, v in result.items() if not isinstance(v, dict) or k in ("bars",)}
    print(json.dumps(summary, indent=1))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
