"""Time to quality: wall time for the default galaxy model to reach validation reduced chi2 1.2.

Trains the default model (``specsift train-ae STORE --out DIR``, no other option) with this
checkout and with a reference commit (default a1f3169, the main of issue #12), one after the
other in the same run, on the same store, and reports for each:

* the wall time until the first epoch whose validation reduced chi2 is at most ``--target``
  (read live from the training log, so it is the time a user waits, data loading included);
* the time to finish, the final validation reduced chi2 and the invariance ratio
  (``specsift evaluate-ae``, each commit's own);
* the ratio reference / this checkout.

The reference runs from a ``git archive`` of its commit (:mod:`reference`).

Usage::

    .venv/bin/python bench/time_to_quality.py                 # 20k mock, ~1 h on 2 cores
    .venv/bin/python bench/time_to_quality.py --n-galaxies 3000 --reference HEAD~1   # smoke
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from reference import ROOT, checkout, specsift  # noqa: E402  (bench/ is on sys.path)

from specsift.models.modeldir import ModelDir

EPOCH = re.compile(r"epoch (\d+) \(([^)]*)\).*val reduced chi2 ([0-9.]+|nan)")


def measure(name: str, src: Path, store: Path, work: Path, target: float, log: Path) -> dict:
    """Train the default model from ``src`` and time it; then evaluate it with the same code."""
    model = work / f"model_{name}"
    epochs = []

    def on_line(line, seconds):
        match = EPOCH.search(line)
        if match:
            epochs.append({"epoch": int(match[1]), "phase": match[2],
                           "val_reduced_chi2": float(match[3]), "seconds": round(seconds, 1)})
            print(f"  [{name}] epoch {match[1]} ({match[2]}): val chi2 {match[3]} "
                  f"at {seconds / 60:.1f} min", flush=True)

    total = specsift(src, ["train-ae", str(store), "--out", str(model)], log, on_line)["seconds"]
    report = work / f"evaluate_{name}.json"
    specsift(src, ["evaluate-ae", str(store), "--model", str(model), "--out", str(report),
                   "--refine-steps", "0"] if name == "this" else
             ["evaluate-ae", str(store), "--model", str(model), "--out", str(report)], log)
    evaluation = json.loads(report.read_text())
    # the log prints 3 decimals (1.2005 reads "1.200"): compare with the full-precision value
    precise = {row["epoch"]: row["val_reduced_chi2"] for row in ModelDir(model).training_log()
               if not row.get("start")}
    for e in epochs:
        e["val_reduced_chi2"] = precise.get(e["epoch"], e["val_reduced_chi2"])
    reached = next((e["seconds"] for e in epochs if e["val_reduced_chi2"] <= target), None)
    return {"source": str(src), "epochs": epochs, "seconds_to_target": reached,
            "seconds_total": round(total, 1),
            "final_val_reduced_chi2": evaluation["splits"]["validation"]["reduced_chi2"],
            "invariance_ratio": evaluation["invariance_ratio"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/mock_desi_ttq"),
                        help="mock DESI folder (written if absent)")
    parser.add_argument("--n-galaxies", type=int, default=20000)
    parser.add_argument("--reference", default="a1f3169", help="commit to compare with")
    parser.add_argument("--target", type=float, default=1.2,
                        help="validation reduced chi2 to reach (default 1.2)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/specsift_bench_ttq"))
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/time_to_quality.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "pipeline.log"
    if not (args.data / "truth.fits").exists():
        subprocess.run([sys.executable, str(ROOT.parent / "shared/bench/mock_desi.py"), "--out",
                        str(args.data), "--n-galaxies", str(args.n_galaxies), "--n-stars", "0",
                        "--outlier-frac", "0", "--seed", "1", "--jobs", "2", "--quiet"], check=True)
    reference = checkout(args.reference, args.work)
    store = args.work / "store"
    if not store.exists():
        specsift(ROOT, ["ingest", "--survey", "desi", "--sample", "bgs", str(args.data), "--out",
                        str(store)], log)
    result = {"target_val_reduced_chi2": args.target, "store": str(store),
              "reference_commit": args.reference}
    for name, src in (("this", ROOT), ("reference", reference)):
        print(f"training the default model with {name} ({src})", flush=True)
        result[name] = measure(name, src, store, args.work, args.target, log)
    this, ref = result["this"], result["reference"]
    if this["seconds_to_target"] and ref["seconds_to_target"]:
        result["speedup_to_target"] = ref["seconds_to_target"] / this["seconds_to_target"]
    result["speedup_total"] = ref["seconds_total"] / this["seconds_total"]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    for name in ("this", "reference"):
        r = result[name]
        reached = f"{r['seconds_to_target'] / 60:.1f} min" if r["seconds_to_target"] else "never"
        print(f"{name:>9}: chi2 {args.target} reached after {reached}; finished in "
              f"{r['seconds_total'] / 60:.1f} min at val chi2 {r['final_val_reduced_chi2']:.3f}, "
              f"invariance ratio {r['invariance_ratio']:.1f}")
    if "speedup_to_target" in result:
        print(f"speed-up to chi2 {args.target}: {result['speedup_to_target']:.2f}x "
              f"(total {result['speedup_total']:.2f}x)")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
