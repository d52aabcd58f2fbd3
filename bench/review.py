"""Review benchmark: a simulated scientist labels outliers, ``rerank`` re-ranks from the labels.

The scientist (who reads the mock's truth file, as no pipeline does) finds some anomaly families
interesting and everything else not interesting: stars, normal galaxies, the other families;
arm miscalibrations are labelled ``artefact``. Each round they label the 20 highest-ranked objects
they have not labelled yet (round 1: the unsupervised RANK; later rounds: the previous round's
REVIEW_RANK), then the catalogue is re-ranked from all labels so far, through the same
functions as ``specsift rerank``. After each round the benchmark counts the interesting objects
among the next 100 of the re-ranked list, and among the unsupervised ranking's corresponding
100 (ranks 20r+1 to 20r+100, what a scientist who never re-ranks looks at next).

Two choices of interesting families (``CHOICES``) show the method is not tied to one. The bar:
after round 3, at least twice as many interesting objects as the unsupervised ranking.

Usage::

    .venv/bin/python bench/review.py --catalog CATALOG --truth MOCK/truth.fits
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from reference import ROOT, write_report  # noqa: E402  (bench/ is on sys.path)

sys.path.insert(0, str(ROOT))

from specsift.catalog import read_catalog  # noqa: E402
from specsift.catalog.labels import catalog_fingerprint, read_labels, write_labels  # noqa: E402
from specsift.catalog.rerank import METHODS, rerank  # noqa: E402

#: name -> anomaly families the simulated scientist finds interesting
CHOICES = {
    "unusual galaxies (qso, double-peaked lines, double-z blends)":
        ("qso", "double_peaked_lines", "double_z_blend"),
    "stars hiding in the galaxy sample (star contaminants, galaxy+star blends)":
        ("star_contaminant", "galaxy_star_blend"),
}
ROUNDS, PER_ROUND, NEXT = 3, 20, 100


def truth_families(truth_path: Path, target_ids: np.ndarray) -> np.ndarray:
    """The truth's ANOMALY of each catalogue object ('' normal, 'star' for a clean star)."""
    data = fits.getdata(truth_path, "TRUTH")
    family = {int(t): (a.strip() or ("star" if c.strip() == "STAR" else ""))
              for t, a, c in zip(data["TARGETID"], np.char.decode(data["ANOMALY"]) if
                                 data["ANOMALY"].dtype.kind == "S" else data["ANOMALY"],
                                 np.char.decode(data["TRUE_CLASS"]) if
                                 data["TRUE_CLASS"].dtype.kind == "S" else data["TRUE_CLASS"])}
    missing = [t for t in target_ids if int(t) not in family]
    if missing:
        raise SystemExit(f"{truth_path}: {len(missing)} catalogue TARGETIDs are not in the truth "
                         f"(first {missing[0]}); is it the truth of this mock?")
    return np.array([family[int(t)] for t in target_ids])


def scientist(family: str, interesting: tuple[str, ...]) -> str:
    if family in interesting:
        return "interesting"
    return "artefact" if family == "arm_miscalibration" else "not_interesting"


def simulate(table, family: np.ndarray, interesting: tuple[str, ...], method: str,
             work: Path) -> list[dict]:
    """Three rounds of labelling and re-ranking; the counts of each round."""
    ids = np.array([str(t) for t in np.asarray(table["TARGETID"]).tolist()])
    is_interesting = np.isin(family, interesting)
    rank = np.asarray(table["RANK"])
    unsupervised = np.argsort(rank, kind="stable")
    fingerprint = catalog_fingerprint(ids)
    labels_path = work / "labels.csv"
    labels: dict[str, dict] = {}
    order = unsupervised
    rounds = []
    for r in range(1, ROUNDS + 1):
        todo = [i for i in order if ids[i] not in labels][:PER_ROUND]
        for i in todo:
            labels[ids[i]] = {"label": scientist(family[i], interesting), "note": "",
                              "time": f"round {r}"}
        write_labels(labels_path, labels, fingerprint, len(ids))
        start = time.perf_counter()
        columns, summary = rerank(table, read_labels(labels_path, fingerprint, ids),
                                  method=method)
        seconds = time.perf_counter() - start
        order = np.argsort(columns["REVIEW_RANK"], kind="stable")
        nxt = order[:NEXT]
        assert not any(ids[i] in labels for i in nxt), "a labelled object was listed again"
        base = unsupervised[PER_ROUND * r:PER_ROUND * r + NEXT]
        rounds.append({"round": r, "labelled": len(labels),
                       "interesting_labelled": int(sum(is_interesting[ids == t][0]
                                                       for t in labels)),
                       "next100_reranked": int(is_interesting[nxt].sum()),
                       "next100_unsupervised": int(is_interesting[base].sum()),
                       "rerank_seconds": round(seconds, 3),
                       "directions": summary["directions"]})
    return rounds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True, help="the mock's truth.fits")
    parser.add_argument("--method", choices=(*METHODS, "both"), default="both")
    parser.add_argument("--hide-stars", action="store_true",
                        help="review only the objects classified as galaxies (IS_STAR false), "
                             "as the review page's filter does")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "review.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table, _ = read_catalog(args.catalog)
    if args.hide_stars:
        table = table[~np.asarray(table["IS_STAR"], bool)]
    family = truth_families(args.truth, np.asarray(table["TARGETID"]))
    methods = METHODS if args.method == "both" else (args.method,)
    report = {"catalog": str(args.catalog), "objects": len(table),
              "hide_stars": args.hide_stars, "results": {}}
    with tempfile.TemporaryDirectory() as work:
        for name, interesting in CHOICES.items():
            total = int(np.isin(family, interesting).sum())
            for method in methods:
                rounds = simulate(table, family, interesting, method, Path(work))
                last = rounds[-1]
                found, baseline = last["next100_reranked"], last["next100_unsupervised"]
                # a baseline of 0 has no ratio; the bar then asks for at least 2 found
                ratio = found / baseline if baseline else float("inf")
                met = found >= 2 * max(baseline, 1)
                report["results"][f"{name} / {method}"] = {
                    "families": interesting, "in_catalogue": total, "rounds": rounds,
                    "ratio_round3": round(ratio, 2) if baseline else None, "bar_2x": met}
                print(f"{name} [{method}] ({total} in the catalogue)")
                for row in rounds:
                    print(f"  round {row['round']}: labelled {row['labelled']} "
                          f"({row['interesting_labelled']} interesting); next 100: re-ranked "
                          f"{row['next100_reranked']}, unsupervised "
                          f"{row['next100_unsupervised']}  [{row['rerank_seconds']} s]")
                print(f"  round 3 ratio {ratio:.2f} (bar 2x: {'met' if met else 'NOT met'})"
                      f"; strongest directions {last['directions']}")
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_report(args.json, report)
    print(f"{report['seconds']} s; written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
