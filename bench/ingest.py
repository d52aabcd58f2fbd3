"""Benchmark: ingest throughput, read throughput and peak memory of a store for a mock DESI survey.

Usage::

    python -c "from specsift.mocks import mock_desi; mock_desi('/tmp/mock_desi_full', \
        n_galaxies=20000, n_stars=8000)"            # once, ~70 s, 2.6 GB
    .venv/bin/python bench/ingest.py /tmp/mock_desi_full [--small] [--sample all]

Each phase (ingest; sequential read; shuffled read through a DataLoader) runs in its own process
so that its peak resident memory is measured alone. The ingested store is checked against the
mock's truth file: every TARGETID must be ingested or rejected, exactly once.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def phase_ingest(args) -> dict:
    from specsift.store import ingest

    inputs = sorted(Path(args.mock).glob("coadd-*.fits"))[: 2 if args.small else None]
    t0 = time.perf_counter()
    report = ingest(inputs, args.store, survey="desi", sample=args.sample, overwrite=True)
    seconds = time.perf_counter() - t0
    return {"files": len(inputs), "n_read": report.n_read, "n_ingested": report.n_ingested,
            "n_rejected": report.n_rejected, "seconds": seconds,
            "spectra_per_s": report.n_read / seconds, "peak_rss_mb": _peak_mb(),
            "input_gb": sum(p.stat().st_size for p in inputs) / 1e9,
            "store_gb": sum(p.stat().st_size for p in Path(args.store).rglob("*")
                            if p.is_file()) / 1e9}


def phase_read(args) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from specsift.store import SpectraStore

    torch.set_num_threads(1)
    store = SpectraStore(args.store)
    out = {}
    t0 = time.perf_counter()
    n = sum(len(b["row"]) for b in store.batches(batch_size=256))
    out["sequential_spectra_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    seen = np.zeros(len(store), dtype=np.int64)
    for batch in DataLoader(store.torch_dataset(batch_size=256, shuffle=True, seed=0),
                            batch_size=None):
        seen[batch["row"].numpy()] += 1
    out["shuffled_dataloader_spectra_per_s"] = len(store) / (time.perf_counter() - t0)
    out["every_row_once_per_epoch"] = bool((seen == 1).all())
    out["peak_rss_mb"] = _peak_mb()
    return out


def check_truth(args) -> dict:
    """Every truth TARGETID is in the store or its rejects, exactly once."""
    from astropy.io import fits

    from specsift.store import SpectraStore

    store = SpectraStore(args.store)
    ids = np.concatenate([np.asarray(store.meta["ID"], dtype=np.int64),
                          np.asarray(store.rejects["ID"], dtype=np.int64)])
    truth = fits.getdata(Path(args.mock) / "truth.fits", "TRUTH")
    if args.small:  # only the first files were ingested
        truth = truth[np.isin(truth["FILE_INDEX"], [0, 1])]
    return {"targetids_match_truth": bool(np.array_equal(np.sort(ids),
                                                         np.sort(truth["TARGETID"]))),
            "n_truth": int(len(truth))}


def _run_phase(name: str, args) -> dict:
    command = [sys.executable, __file__, args.mock, "--phase", name, "--store", str(args.store),
               "--sample", args.sample] + (["--small"] if args.small else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mock", nargs="?", default="/tmp/mock_desi_full",
                        help="mock DESI folder (specsift.mocks.mock_desi output)")
    parser.add_argument("--small", action="store_true", help="only the first two files")
    parser.add_argument("--sample", default="all", help="sample to ingest (all, bgs, mws)")
    parser.add_argument("--store", default=None, help="store folder (default: a temp folder)")
    parser.add_argument("--json", default=str(RESULTS / "ingest.json"), help="results file")
    parser.add_argument("--phase", choices=("ingest", "read", "truth"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        fn = {"ingest": phase_ingest, "read": phase_read, "truth": check_truth}[args.phase]
        print(json.dumps(fn(args)))
        return 0
    temp = None
    if args.store is None:
        temp = tempfile.mkdtemp(prefix="specsift-bench-")
        args.store = str(Path(temp) / "store")
    try:
        results = {"mock": args.mock, "small": args.small, "sample": args.sample,
                   "ingest": _run_phase("ingest", args), "read": _run_phase("read", args),
                   "truth": _run_phase("truth", args)}
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    ing, rd = results["ingest"], results["read"]
    print(f"ingest   {ing['n_read']} spectra from {ing['files']} files in {ing['seconds']:.1f} s "
          f"= {ing['spectra_per_s']:.0f} spectra/s, peak RSS {ing['peak_rss_mb']:.0f} MB; "
          f"{ing['n_ingested']} ingested, {ing['n_rejected']} rejected; "
          f"{ing['input_gb']:.2f} GB in -> {ing['store_gb']:.2f} GB store")
    print(f"read     sequential {rd['sequential_spectra_per_s']:.0f} spectra/s, shuffled "
          f"DataLoader {rd['shuffled_dataloader_spectra_per_s']:.0f} spectra/s, peak RSS "
          f"{rd['peak_rss_mb']:.0f} MB, every row once per epoch: {rd['every_row_once_per_epoch']}")
    print(f"truth    TARGETIDs (ingested + rejected) match truth.fits: "
          f"{results['truth']['targetids_match_truth']} ({results['truth']['n_truth']} objects)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
