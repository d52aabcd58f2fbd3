"""The review page and the gallery page in a real headless browser: Debian's chromium, driven by
selenium through chromedriver.

Where selenium, chromium or chromedriver is missing the tests skip, saying what to install;
``.ci/run`` installs them and sets ``SPECSIFT_REQUIRE_BROWSER``, which turns that skip into a
failure, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import numpy as np
import pytest

from specsift.catalog import read_catalog
from specsift.catalog.labels import read_labels
from specsift.plots.gallery import write_gallery
from specsift.plots.records import open_sources, spectrum_records


def _missing(reason: str):
    if os.environ.get("SPECSIFT_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}, and SPECSIFT_REQUIRE_BROWSER is set")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Headless chromium (one per module; each test opens its own pages)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        _missing("chromium or chromedriver is not installed "
                 "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 20.0):
    """Poll ``script`` (a JS expression) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while not (value := driver.execute_script(f"return {script};")):
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never satisfied {script!r}")
        time.sleep(0.1)
    return value


def page_errors(driver) -> list[str]:
    """JavaScript errors and failed loads the page logged (the missing favicon aside)."""
    return [e["message"] for e in driver.get_log("browser") if "favicon" not in e["message"]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(catalog, out, top: int = 5):
    """``specsift review CATALOG --out OUT --serve`` in a child process; the page's URL.
    Stopped with Ctrl-C (SIGINT), as a user stops it, which must exit cleanly."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "specsift.cli.main", "review", str(catalog), "--out", str(out),
         "--top", str(top), "--serve", "--port", str(port), "--device", "cpu"],
        stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"specsift review --serve exited: {process.stderr.read()}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("specsift review --serve never answered") from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert f"serving {url}" in log and "stopped; " in log


def badges(driver, n: int) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.card .badge')].slice(0, arguments[0])"
        ".map(b => b.textContent);", n)


def test_labels_made_with_the_keyboard_survive_a_reload_and_a_restart(browser, scored,
                                                                       tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _, catalog = scored
    out = tmp_path / "review"
    shown = ["interesting", "not interesting", "artefact", "unlabelled"]
    with serving(catalog, out) as url:
        browser.get(url)
        wait_for(browser, "document.body.dataset.synced")
        ids = browser.execute_script(
            "return [...document.querySelectorAll('.card')].map(c => c.dataset.id);")
        assert len(ids) == 5 and badges(browser, 5) == ["unlabelled"] * 5
        # the only complaint: no labels.csv yet (the page asks the server for it)
        assert all(re.search(r"/labels\.csv .*404", m) for m in page_errors(browser))
        # a note for the first (e, type, Enter), then label three objects in a row
        ActionChains(browser).send_keys("e", "two sets of lines", Keys.ENTER, "i", "n", "a") \
            .perform()
        assert badges(browser, 4) == shown
        deadline = time.monotonic() + 20
        while len(labels := read_labels(out / "labels.csv") if (out / "labels.csv").exists()
                   else {}) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {t: e["label"] for t, e in labels.items()} == {
            ids[0]: "interesting", ids[1]: "not_interesting", ids[2]: "artefact"}
        assert labels[ids[0]]["note"] == "two sets of lines"
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"])
                   for e in labels.values())
        assert (out / "labels.csv").read_text().splitlines()[1] == "TARGETID,label,note,time"

        browser.refresh()
        wait_for(browser, "document.body.dataset.synced")
        assert badges(browser, 4) == shown
        assert browser.find_element("id", "progress").text == "3 of 5 labelled"
        assert browser.find_element("css selector", ".card .note").get_attribute("value") == \
            "two sets of lines"
        assert not page_errors(browser)

    # a restart, and a browser that kept nothing: the labels come back from labels.csv
    with serving(catalog, out) as url:
        browser.get(url)
        browser.execute_script("localStorage.clear();")
        browser.refresh()
        wait_for(browser, "document.body.dataset.synced")
        assert badges(browser, 4) == shown
    assert read_labels(out / "labels.csv") == labels


@pytest.fixture(scope="module")
def gallery(scored, tmp_path_factory):
    """A gallery of the 3 top-ranked galaxies and 2 top-ranked stars, in rank order."""
    _, catalog = scored
    table, metadata = read_catalog(catalog)
    table = table[np.argsort(table["RANK"], kind="stable")]
    star = np.asarray(table["IS_STAR"], dtype=bool)
    chosen = table[np.sort(np.concatenate([np.flatnonzero(~star)[:3], np.flatnonzero(star)[:2]]))]
    store, galaxy, star_model = open_sources(metadata, catalog=catalog)
    records = spectrum_records(store, chosen["STORE_ROW"], galaxy, star_model, device="cpu")
    rows = [{name: chosen[name][k] for name in chosen.colnames} for k in range(len(chosen))]
    out = tmp_path_factory.mktemp("gallery")
    return write_gallery(out, records, rows), rows


def summary(driver) -> list[tuple[int, bool]]:
    """The summary table's rows as shown: (object index, displayed)."""
    return [(int(row.get_attribute("data-k")), row.is_displayed())
            for row in driver.find_elements("css selector", "#summary tbody tr")]


def test_gallery_sorts_by_a_column_and_hides_stars_in_the_browser(browser, gallery):
    index, rows = gallery
    browser.get(index.as_uri())
    names = list(rows[0])
    assert summary(browser) == [(k, True) for k in range(5)]
    assert browser.find_element("id", "shown").text == "5 of 5 shown"

    head = browser.find_element("css selector", '#summary th[title="sort by Z"]')
    z = np.array([float(row["Z"]) for row in rows])
    head.click()
    assert [k for k, _ in summary(browser)] == np.argsort(z, kind="stable").tolist()
    assert "sorted" in head.get_attribute("class")
    head.click()
    descending = np.argsort(-z, kind="stable").tolist()
    assert [k for k, _ in summary(browser)] == descending
    sections = browser.find_elements("css selector", "#objects section.obj")
    assert [int(s.get_attribute("data-k")) for s in sections] == descending
    cells = browser.find_elements(
        "css selector", f"#summary tbody tr td:nth-child({names.index('Z') + 2})")
    assert [float(c.text) for c in cells] == pytest.approx(sorted(z, reverse=True), rel=1e-4)

    stars = {k for k, row in enumerate(rows) if bool(row["IS_STAR"])}
    assert len(stars) == 2
    browser.find_element("id", "hide-stars").click()
    assert summary(browser) == [(k, k not in stars) for k in descending]
    assert [s.is_displayed() for s in sections] == [k not in stars for k in descending]
    assert browser.find_element("id", "shown").text == "3 of 5 shown"
    browser.find_element("id", "hide-stars").click()
    assert all(displayed for _, displayed in summary(browser))
    assert not page_errors(browser)
