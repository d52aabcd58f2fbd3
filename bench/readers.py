"""Reader throughput: DESI coadds of the mock survey (file by file), SDSS and LAMOST real files.

Reports spectra per second (wall clock, and per CPU second, which does not depend on how busy
the machine is) on one process, the per-file time and the peak resident memory, which stays at
about one file's worth because ``iter_read`` streams.

Usage::

    .venv/bin/python bench/readers.py --small     # 3 coadds of 1000 spectra (generated, ~30 s)
    .venv/bin/python bench/readers.py             # the 28-file mock survey (20000 + 8000 spectra;
                                                  # reuses /tmp/mock_desi_full when present)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from specsift.atomic import atomic_path  # noqa: E402
from specsift.datapaths import data_dir  # noqa: E402
from specsift.io import desi, lamost, sdss  # noqa: E402
from specsift.mocks import mock_desi  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_reader(reader, paths) -> dict:
    """Stream ``reader.iter_read(paths)`` once; count spectra, files and seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    n_spectra = n_chunks = 0
    for part in reader.iter_read(paths):
        n_spectra += len(part)
        n_chunks += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"spectra": n_spectra, "chunks": n_chunks, "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3), "spectra_per_s": round(n_spectra / seconds, 1),
            "spectra_per_cpu_s": round(n_spectra / cpu, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="3 mock coadds instead of 28")
    parser.add_argument("--mock", help="mock DESI folder (generated there if it has no coadds)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "readers.json"))
    args = parser.parse_args(argv)

    n_galaxies, n_stars = (2000, 1000) if args.small else (20000, 8000)
    if args.mock is None:
        full = Path("/tmp/mock_desi_full")
        args.mock = (full if not args.small and (full / "truth.fits").exists()
                     else Path(f"/tmp/specsift_readers_mock_{n_galaxies + n_stars}"))
    mock = Path(args.mock)
    if not list(mock.glob("coadd-*.fits")):
        print(f"generating mock DESI ({n_galaxies} galaxies, {n_stars} stars) in {mock}")
        mock_desi(mock, n_galaxies=n_galaxies, n_stars=n_stars, seed=1, per_file=1000,
                  verbose=False)

    result = {"desi_mock": time_reader(desi, mock)}
    result["desi_mock"]["files"] = len(list(mock.glob("coadd-*.fits")))
    result["desi_mock"]["seconds_per_file"] = round(result["desi_mock"]["seconds"]
                                                    / result["desi_mock"]["files"], 3)
    result["peak_rss_mb_after_desi"] = round(_peak_rss_mb())
    real = data_dir() / "real"
    result["sdss_real"] = time_reader(sdss, real / "sdss")
    result["lamost_real"] = time_reader(lamost, real / "lamost")
    result["peak_rss_mb"] = round(_peak_rss_mb())
    result["config"] = {"small": args.small, "mock": str(mock)}

    d = result["desi_mock"]
    print(f"DESI mock: {d['spectra']} spectra in {d['files']} files, {d['seconds']} s -> "
          f"{d['spectra_per_s']} spectra/s ({d['seconds_per_file']} s/file; "
          f"{d['spectra_per_cpu_s']} per CPU second), "
          f"peak RSS {result['peak_rss_mb_after_desi']} MB")
    for name in ("sdss_real", "lamost_real"):
        r = result[name]
        print(f"{name}: {r['spectra']} spectra in {r['seconds']} s -> {r['spectra_per_s']} /s")
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
