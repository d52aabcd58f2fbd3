"""Run the ``specsift`` CLI of another commit beside this checkout's, for side-by-side figures.

The other commit is a ``git archive`` in its own folder, imported by the same interpreter (its
dependencies are this venv's), so no second virtual environment is needed; the runner checks that
the package really came from that folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RUN = ("import sys; sys.path.insert(0, {src!r}); import specsift; "
        "assert specsift.__file__.startswith({src!r}), specsift.__file__; "
        "from specsift.cli.main import main; rc = main(sys.argv[1:]); import resource; "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")

__all__ = ["ROOT", "checkout", "specsift", "write_report"]


def checkout(commit: str, work: Path) -> Path:
    """The source tree of ``commit`` under ``work`` (extracted once)."""
    src = Path(work) / f"src_{commit}"
    if not (src / "specsift").exists():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src


def specsift(src: Path, argv: list[str], log: Path, on_line=None) -> dict:
    """Run ``specsift ARGV`` from the package in ``src`` in a fresh process; ``on_line(line,
    seconds)`` sees its output live. Returns the wall time and that process's own peak RSS (MB)."""
    start = time.perf_counter()
    peak = None
    with open(log, "a") as handle:
        handle.write(f"\n$ specsift {' '.join(argv)}  [{src}]\n")
        # the data folder beside this checkout, not beside the archive (no ../shared there)
        env = {"SPECSIFT_DATA": str(ROOT.parent / "shared" / "data"), **os.environ}
        proc = subprocess.Popen([sys.executable, "-c", _RUN.format(src=str(src)), *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
        for line in proc.stdout:
            if line.startswith("PEAK_RSS_KB"):
                peak = int(line.split()[1]) / 1024
                continue
            handle.write(line)
            handle.flush()
            if on_line:
                on_line(line, time.perf_counter() - start)
        if proc.wait():
            raise SystemExit(f"specsift {argv[0]} failed in {src}; see {log}")
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak}


def write_report(path: Path, report: dict) -> None:
    """Write a benchmark's figures as JSON (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
