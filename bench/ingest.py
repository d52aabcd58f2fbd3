"""Benchmark: ingest throughput with 1 and N workers, read throughput and peak memory of a store.

Usage::

    python -c "from specsift.mocks import mock_desi; mock_desi('/tmp/mock_desi_full', \
        n_galaxies=20000, n_stars=8000)"            # once, ~70 s, 2.6 GB
    .venv/bin/python bench/ingest.py /tmp/mock_desi_full [--small] [--sample all] [--workers 2]

Each phase runs in its own process so that its peak resident memory is measured alone: ingest
with 1 worker; ingest of the same inputs into a second store with ``--workers`` local processes;
a rerun of the finished 1-worker store; sequential read; shuffled read through a DataLoader. The
two stores must be byte-identical (every file but the lock, which holds the writer's pid), and
the store is checked against the mock's truth file: every TARGETID must be ingested or rejected,
exactly once. The exit status is 1 if either check fails.

The expected scaling on a cluster is Amdahl's law: ``T(N) = T(1) (f + (1 - f) / N) + c`` for
``N`` workers, no more than there are input files (one file is one task). The serial fraction
``f`` is measured: the rerun skips every file but still lists the inputs and assembles the
store-wide catalogue, the work that no number of workers shortens, so ``f = t_rerun / T(1)``; the
rest, divided by the files, is the time per file. ``c`` is what the N-worker run took beyond
Amdahl's prediction: the start-up of the worker processes and, on a shared 2-core machine, the
parent and the other jobs competing for the cores (a probe times N pure-CPU processes against one
just before the ingests: what the machine gives then). It is paid once, so the speed-up of a large
survey tends to ``1 / (f + (1 - f) / N)`` and the DR1 hours leave it out. Both the serial and the
per-file work grow with the number of spectra, so ``f`` carries over to a survey the size of DESI
DR1. Not modelled: the bandwidth of a file system shared by the workers.
"""

from __future__ import annotations

import argparse
import filecmp
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
DR1_SPECTRA = 18.7e6  # DESI DR1, the survey the cluster projection is for
CLUSTER_WORKERS = (2, 4, 8, 16, 32, 64, 128, 256)
SPIN = "x = 0\nfor i in range(20_000_000):\n    x += i"  # ~2 s of pure CPU, no I/O


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the worker processes)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _inputs(args) -> list[Path]:
    return sorted(Path(args.mock).glob("coadd-*.fits"))[: 2 if args.small else None]


def phase_ingest(args) -> dict:
    """Ingest into a fresh store; as ``--phase rerun``, into the finished one (every file
    skipped), which times the serial part of an ingest."""
    from specsift.store import ingest

    inputs = _inputs(args)
    t0, cpu0 = time.perf_counter(), _cpu_s()
    report = ingest(inputs, args.store, survey="desi", sample=args.sample,
                    overwrite=args.phase == "ingest", workers=args.workers)
    seconds, cpu_s = time.perf_counter() - t0, _cpu_s() - cpu0
    return {"workers": args.workers, "files": len(inputs),
            "files_skipped": len(report.files_skipped), "n_read": report.n_read,
            "n_ingested": report.n_ingested, "n_rejected": report.n_rejected,
            "seconds": seconds, "cpu_s": cpu_s, "spectra_per_s": report.n_read / seconds,
            "peak_rss_mb": _peak_mb(), "worker_peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN),
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


def compare_stores(a: Path, b: Path) -> dict:
    """Every file of two stores, byte for byte; the lock file (the writer's pid) aside."""
    from specsift.store.lock import LOCK_NAME

    def names(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*")
                if p.is_file() and p.name != LOCK_NAME}

    both = names(a) | names(b)
    differ = [str(n) for n in sorted(both) if not ((a / n).is_file() and (b / n).is_file()
                                                   and filecmp.cmp(a / n, b / n, shallow=False))]
    return {"identical": not differ, "files_compared": len(both), "files_differing": differ}


def machine_speedup(workers: int) -> float:
    """How much faster ``workers`` CPU-bound processes get through the same work as one, on this
    machine now: a shared VM may give less than its cores, and no ingest speed-up can beat it."""
    def wall(n: int) -> float:
        t0 = time.perf_counter()
        for process in [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]:
            if process.wait():
                raise RuntimeError("the CPU probe failed")
        return time.perf_counter() - t0

    return workers * wall(1) / wall(workers)


def amdahl(serial_fraction: float, workers: int) -> float:
    """Speed-up on ``workers`` when ``serial_fraction`` of the one-worker time cannot be shared."""
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / workers)


def cluster_scaling(one: dict, many: dict, rerun: dict) -> dict:
    """Amdahl's law from the measured serial fraction, its start-up cost, and DR1 projections."""
    serial = min(rerun["seconds"] / one["seconds"], 1.0)
    overhead = many["seconds"] - one["seconds"] * (serial + (1 - serial) / many["workers"])
    dr1_one_worker_s = DR1_SPECTRA / one["spectra_per_s"]
    rows = [{"workers": n, "speedup": amdahl(serial, n),
             "dr1_hours": dr1_one_worker_s / amdahl(serial, n) / 3600}
            for n in CLUSTER_WORKERS]
    return {"model": "Amdahl: T(N) = T(1) (f + (1 - f) / N) + c, N <= input files",
            "serial_fraction": serial, "serial_s": rerun["seconds"],
            "per_file_s": (one["seconds"] - rerun["seconds"]) / one["files"],
            "amdahl_speedup_at_measured_workers": amdahl(serial, many["workers"]),
            "overhead_s": overhead, "max_speedup": 1.0 / serial, "cluster": rows}


def _run_phase(name: str, args, store: Path, workers: int = 1) -> dict:
    command = [sys.executable, __file__, args.mock, "--phase", name, "--store", str(store),
               "--sample", args.sample, "--workers", str(workers)]
    done = subprocess.run(command + (["--small"] if args.small else []), check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(args, one_store: Path, many_store: Path) -> dict:
    for path in _inputs(args):  # both ingests then read their inputs from the page cache
        path.read_bytes()
    machine = machine_speedup(args.workers)
    one = _run_phase("ingest", args, one_store)
    many = _run_phase("ingest", args, many_store, args.workers)
    same = compare_stores(one_store, many_store)
    rerun = _run_phase("rerun", args, one_store)
    return {"mock": args.mock, "small": args.small, "sample": args.sample,
            "ingest": {"1": one, str(args.workers): many},
            "speedup": one["seconds"] / many["seconds"], "machine_speedup": machine,
            "stores": same, "rerun": rerun,
            "scaling": cluster_scaling(one, many, rerun),
            "read": _run_phase("read", args, one_store),
            "truth": _run_phase("truth", args, one_store)}


def _print(results: dict, workers: int) -> None:
    one, many = results["ingest"]["1"], results["ingest"][str(workers)]
    scaling, stores, rerun, rd = (results["scaling"], results["stores"], results["rerun"],
                                  results["read"])
    print(f"ingest   {one['n_read']} spectra from {one['files']} files; "
          f"{one['n_ingested']} ingested, {one['n_rejected']} rejected; "
          f"{one['input_gb']:.2f} GB in -> {one['store_gb']:.2f} GB store")
    for run in (one, many):
        print(f"  {run['workers']:>3} worker(s)  {run['seconds']:6.1f} s = "
              f"{run['spectra_per_s']:5.0f} spectra/s, {run['cpu_s']:.0f} CPU s, "
              f"peak RSS {run['peak_rss_mb']:.0f} MB"
              + (f", largest worker {run['worker_peak_rss_mb']:.0f} MB"
                 if run["workers"] > 1 else ""))
    print(f"  speed-up {results['speedup']:.2f} with {workers} workers (Amdahl from the serial "
          f"fraction: {scaling['amdahl_speedup_at_measured_workers']:.2f}); stores "
          f"byte-identical: {stores['identical']} ({stores['files_compared']} files"
          + (f"; differ: {', '.join(stores['files_differing'])})" if not stores["identical"]
             else ")"))
    print(f"machine  {workers} CPU-bound processes together did {results['machine_speedup']:.2f}x "
          f"the work per second of one (the ceiling of the speed-up here, now)")
    print(f"serial   rerun of the finished store ({rerun['files_skipped']} of {rerun['files']} "
          f"files skipped): {scaling['serial_s']:.2f} s, serial fraction f = "
          f"{scaling['serial_fraction']:.3f}; {scaling['per_file_s']:.2f} s per file; the "
          f"{workers}-worker run took {scaling['overhead_s']:.1f} s more than Amdahl predicts "
          f"(start-up, contention)")
    print(f"cluster  {scaling['model']}; speed-up at most {scaling['max_speedup']:.0f}")
    print("  workers  speed-up  DESI DR1 (18.7 M spectra) hours")
    for row in scaling["cluster"]:
        print(f"  {row['workers']:>7}  {row['speedup']:8.1f}  {row['dr1_hours']:8.2f}")
    print(f"read     sequential {rd['sequential_spectra_per_s']:.0f} spectra/s, shuffled "
          f"DataLoader {rd['shuffled_dataloader_spectra_per_s']:.0f} spectra/s, peak RSS "
          f"{rd['peak_rss_mb']:.0f} MB, every row once per epoch: {rd['every_row_once_per_epoch']}")
    print(f"truth    TARGETIDs (ingested + rejected) match truth.fits: "
          f"{results['truth']['targetids_match_truth']} ({results['truth']['n_truth']} objects)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mock", nargs="?", default="/tmp/mock_desi_full",
                        help="mock DESI folder (specsift.mocks.mock_desi output)")
    parser.add_argument("--small", action="store_true", help="only the first two files")
    parser.add_argument("--sample", default="all", help="sample to ingest (all, bgs, mws)")
    parser.add_argument("--workers", type=int, default=2,
                        help="local worker processes of the parallel ingest (at least 2)")
    parser.add_argument("--store", default=None,
                        help="folder of the 1-worker store; the parallel one is written beside "
                             "it as STORE-Nw (default: a temp folder, removed)")
    parser.add_argument("--json", default=str(RESULTS / "ingest.json"), help="results file")
    parser.add_argument("--phase", choices=("ingest", "rerun", "read", "truth"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        fn = {"ingest": phase_ingest, "rerun": phase_ingest, "read": phase_read,
              "truth": check_truth}[args.phase]
        print(json.dumps(fn(args)))
        return 0
    if args.workers < 2:
        parser.error("--workers must be at least 2 (the 1-worker ingest always runs)")
    temp = None
    if args.store is None:
        temp = tempfile.mkdtemp(prefix="specsift-bench-")
        args.store = str(Path(temp) / "store")
    one_store = Path(args.store)
    try:
        results = _measure(args, one_store, one_store.with_name(f"{one_store.name}-"
                                                                f"{args.workers}w"))
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    _print(results, args.workers)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if results["stores"]["identical"] and results["truth"]["targetids_match_truth"] else 1


if __name__ == "__main__":
    sys.exit(main())
