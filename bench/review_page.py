"""Review-page benchmark: how long a page of the top objects takes to open in headless Chromium.

Writes the page with ``specsift review CATALOG --out DIR --top N`` (timed), then opens it
``--runs`` times in Debian's chromium through selenium, each time in a fresh browser, and
reports for each run:

* ``ready``: from the request to the moment the page's script has built every card and bound
  the keys (``document.body.dataset.ready``), what a scientist waits for before labelling;
* ``load``: the browser's own ``loadEventEnd - navigationStart`` (HTML parsed, assets loaded);
* ``first_drawn``: until the first card's spectrum is drawn.

The bar (issue #15): a page of 500 objects opens in under 3 s. Results are printed and written
to ``bench/results/review_page.json``.

Usage::

    .venv/bin/python bench/review_page.py --catalog CATALOG [--top 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reference import ROOT, write_report  # noqa: E402  (bench/ is on sys.path)

BAR_SECONDS = 3.0


def chromium():
    """A fresh headless chromium driven through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        raise SystemExit("needs Debian's chromium and chromium-driver (apt-get install ...)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def open_once(url: str) -> dict:
    """One cold open of ``url``: seconds until ready, until load, until the first card drawn."""
    driver = chromium()
    try:
        start = time.perf_counter()
        driver.get(url)
        ready = first = None
        while ready is None or first is None:
            now = time.perf_counter() - start
            if now > 60:
                raise RuntimeError(f"{url} was not ready after 60 s")
            state = driver.execute_script(
                "const c = document.querySelector('.card');"
                "return [document.body.dataset.ready === '1', !!(c && c.dataset.drawn),"
                " document.querySelectorAll('.card').length];")
            if state[0] and ready is None:
                ready, cards = now, state[2]
            if state[1] and first is None:
                first = now
            time.sleep(0.01)
        load = driver.execute_script(
            "const t = performance.timing; return (t.loadEventEnd - t.navigationStart) / 1000;")
        return {"ready": round(ready, 3), "load": round(load, 3), "first_drawn": round(first, 3),
                "cards": int(cards)}
    finally:
        driver.quit()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "review_page.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "review"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "specsift.cli.main", "review", str(args.catalog),
                        "--out", str(out), "--top", str(args.top)], check=True)
        written = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        runs = [open_once((out / "index.html").as_uri()) for _ in range(args.runs)]
    ready = np.array([r["ready"] for r in runs])
    report = {"catalog": str(args.catalog), "top": args.top, "write_seconds": round(written, 1),
              "page_megabytes": round(size / 2**20, 2), "runs": runs,
              "ready_median": float(np.median(ready)), "ready_max": float(ready.max()),
              "bar_seconds": BAR_SECONDS, "bar_met": bool(ready.max() < BAR_SECONDS)}
    print(f"page of {args.top} objects ({report['page_megabytes']} MB) written in {written:.1f} s")
    for k, run in enumerate(runs, 1):
        print(f"  open {k}: ready {run['ready']:.2f} s, load event {run['load']:.2f} s, "
              f"first card drawn {run['first_drawn']:.2f} s, {run['cards']} cards")
    print(f"ready: median {report['ready_median']:.2f} s, max {report['ready_max']:.2f} s "
          f"(bar < {BAR_SECONDS} s: {'met' if report['bar_met'] else 'NOT met'})")
    write_report(args.json, report)
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
