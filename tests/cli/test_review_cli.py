"""``specsift review`` and ``specsift rerank`` end to end, and what the label server refuses."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import time

import numpy as np
import pytest

from specsift.catalog import read_catalog
from specsift.catalog.labels import (LabelBook, LabelServer, catalog_fingerprint, read_labels,
                                     write_labels)
from specsift.cli.main import main


def page_data(folder) -> tuple[dict, dict]:
    """The objects and the configuration the page reads from ``spectra.js``."""
    text = (folder / "spectra.js").read_text()
    data, config = re.fullmatch(r"window\.SPECSIFT_DATA = (.*);\nwindow\.SPECSIFT_CONFIG = "
                                r"(.*);\n", text, re.S).groups()
    return json.loads(data), json.loads(config)


def top_ids(table, column: str, n: int) -> list[str]:
    """The first ``n`` scored TARGETIDs by ``column``, as the review page lists them (text:
    a JavaScript number would round them)."""
    scored = table[np.isfinite(np.asarray(table["OUTLIER_SCORE"], dtype=float))]
    return [str(t) for t in scored[np.argsort(scored[column], kind="stable")]["TARGETID"][:n]]


@pytest.fixture(scope="module")
def catalog(scored):
    """The scored catalogue, its table and its fingerprint."""
    _, path = scored
    table, _ = read_catalog(path)
    return path, table, catalog_fingerprint(table["TARGETID"])


@pytest.fixture(scope="module")
def review(catalog, tmp_path_factory):
    """A review folder of the top 6 objects."""
    path, _, _ = catalog
    out = tmp_path_factory.mktemp("review")
    assert main(["-q", "review", str(path), "--out", str(out), "--top", "6",
                 "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def labels(catalog, tmp_path_factory):
    """A labels.csv of the 12 top-ranked objects: interesting, not interesting and artefact in
    turn."""
    _, table, fingerprint = catalog
    kinds = ("interesting", "not_interesting", "artefact")
    entries = {t: {"label": kinds[k % 3], "note": f"note {k}",
                        "time": f"2026-12-02T10:{k:02d}:00Z"}
               for k, t in enumerate(top_ids(table, "RANK", 12))}
    return write_labels(tmp_path_factory.mktemp("labels") / "labels.csv", entries, fingerprint,
                        len(table)), entries


def test_review_writes_a_self_contained_page_of_the_top_objects_in_rank_order(catalog, review):
    _, table, fingerprint = catalog
    page = (review / "index.html").read_text()
    data, config = page_data(review)
    assert '<script src="spectra.js"></script>' in page
    assert not re.search(r"https?://|(src|href)=\"//", page + (review / "spectra.js").read_text())
    assert [o["id"] for o in data["objects"]] == top_ids(table, "RANK", 6)
    assert config["fingerprint"] == fingerprint and config["n_catalog"] == len(table)
    assert config["labels"] == {} and not (review / "labels.csv").exists()
    first = data["objects"][0]
    assert {"flux", "mg", "ms", "sw", "reason", "row"} <= set(first)
    assert str(first["row"][1]) == first["id"]             # the TARGETID cell, exact
    assert config["columns"][:3] == ["RANK", "TARGETID", "OUTLIER_SCORE"]


def test_review_shows_the_labels_already_in_the_folder(catalog, labels, tmp_path):
    path, _, _ = catalog
    labels_path, entries = labels
    out = tmp_path / "review"
    out.mkdir()
    shutil.copy(labels_path, out / "labels.csv")
    assert main(["-q", "review", str(path), "--out", str(out), "--top", "3",
                 "--device", "cpu"]) == 0
    assert page_data(out)[1]["labels"] == entries
    assert read_labels(out / "labels.csv") == entries        # kept as it was


def test_review_refuses_a_label_file_of_another_catalogue(catalog, tmp_path, capsys):
    path, _, _ = catalog
    out = tmp_path / "review"
    out.mkdir()
    write_labels(out / "labels.csv", {"1": {"label": "interesting", "note": "", "time": ""}},
                 catalog_fingerprint([1, 2, 3]), 3)
    assert main(["review", str(path), "--out", str(out), "--top", "3", "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert "labels.csv" in error and "belong to another catalogue" in error
    assert len(error.strip().splitlines()) == 1 and not (out / "index.html").exists()


def test_review_reports_a_bad_top_in_one_line(catalog, tmp_path, capsys):
    path, _, _ = catalog
    assert main(["review", str(path), "--out", str(tmp_path / "r"), "--top", "0"]) == 2
    error = capsys.readouterr().err
    assert "--top must be at least 1" in error and "Traceback" not in error


def test_rerank_is_deterministic_and_keeps_labelled_objects_out_of_the_next_list(
        catalog, labels, tmp_path):
    path, table, _ = catalog
    labels_path, entries = labels
    outs = [tmp_path / f"reviewed{k}.fits" for k in range(2)]
    for out in outs:
        assert main(["-q", "rerank", str(path), "--labels", str(labels_path),
                     "--out", str(out)]) == 0
    (first, metadata), (second, _) = (read_catalog(out) for out in outs)
    for name in ("RELEVANCE", "REVIEW_TRUST", "REVIEW_SCORE", "REVIEW_RANK", "REVIEW_LABEL"):
        assert first[name].tolist() == second[name].tolist(), name
    assert first["TARGETID"].tolist() == table["TARGETID"].tolist()
    relevance = np.asarray(first["RELEVANCE"])
    assert np.all((relevance >= 0) & (relevance <= 1))
    ids = [str(t) for t in first["TARGETID"]]
    labelled = np.array([t in entries for t in ids])
    assert [first["REVIEW_LABEL"][k] for k in np.flatnonzero(labelled)] == \
        [entries[ids[k]]["label"] for k in np.flatnonzero(labelled)]
    ranks = np.asarray(first["REVIEW_RANK"])
    assert sorted(ranks) == list(range(1, len(first) + 1))
    assert ranks[labelled].min() == len(first) - len(entries) + 1
    assert metadata["REVIEW"]["labelled"] == 12 and metadata["REVIEW"]["interesting"] == 4


def test_review_of_a_reranked_catalogue_lists_only_unlabelled_objects(catalog, labels, tmp_path):
    path, _, _ = catalog
    labels_path, entries = labels
    reviewed = tmp_path / "reviewed.fits"
    assert main(["-q", "rerank", str(path), "--labels", str(labels_path),
                 "--out", str(reviewed)]) == 0
    out = tmp_path / "review"
    assert main(["-q", "review", str(reviewed), "--out", str(out), "--top", "20",
                 "--device", "cpu"]) == 0
    shown = [o["id"] for o in page_data(out)[0]["objects"]]
    assert shown == top_ids(read_catalog(reviewed)[0], "REVIEW_RANK", 20)
    assert not set(shown) & set(entries)


def test_rerank_refuses_labels_of_another_catalogue(catalog, tmp_path, capsys):
    path, _, _ = catalog
    foreign = write_labels(tmp_path / "labels.csv",
                           {"1": {"label": "interesting", "note": "", "time": ""}},
                           catalog_fingerprint([1, 2, 3]), 3)
    assert main(["rerank", str(path), "--labels", str(foreign),
                 "--out", str(tmp_path / "reviewed.fits")]) == 2
    assert "belong to another catalogue" in capsys.readouterr().err
    assert not (tmp_path / "reviewed.fits").exists()


def test_rerank_names_the_row_of_a_bad_label(catalog, tmp_path, capsys):
    path, table, _ = catalog
    bad = tmp_path / "labels.csv"
    bad.write_text(f"TARGETID,label,note,time\n{table['TARGETID'][0]},interesting,,\n"
                   f"{table['TARGETID'][1]},boring,,\n")
    assert main(["rerank", str(path), "--labels", str(bad),
                 "--out", str(tmp_path / "reviewed.fits")]) == 2
    error = capsys.readouterr().err
    assert "row 3" in error and "'boring' is not one of" in error


def test_rerank_will_not_overwrite_its_input(catalog, labels, capsys):
    path, _, _ = catalog
    assert main(["rerank", str(path), "--labels", str(labels[0]), "--out", str(path)]) == 2
    error = capsys.readouterr().err
    assert "--out must be a new file" in error and "Traceback" not in error


@pytest.fixture
def server(catalog, review, tmp_path):
    """A label server of a copy of the review folder, on a free loopback port."""
    _, table, fingerprint = catalog
    folder = tmp_path / "served"
    shutil.copytree(review, folder)
    book = LabelBook(folder / "labels.csv", fingerprint, table["TARGETID"])
    server = LabelServer(folder, book).start()
    yield server, fingerprint, str(table["TARGETID"][0])
    server.stop()


def ask(server, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    host, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post(fingerprint, target, label="interesting") -> bytes:
    return json.dumps({"fingerprint": fingerprint, "TARGETID": target, "label": label,
                       "note": "two sets of lines", "time": "2026-12-02T10:55:02Z"}).encode()


def test_server_listens_on_loopback_only(server):
    server, _, _ = server
    host, port = server.httpd.server_address[:2]
    assert host == "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))       # no packet is sent: finds the outward address
            outward = probe.getsockname()[0]
    except OSError:                               # no route at all
        outward = "127.0.0.1"
    if outward.startswith("127."):
        pytest.skip("this machine has no non-loopback address to try")
    with pytest.raises(OSError):
        socket.create_connection((outward, port), timeout=2).close()


def test_server_serves_the_page_and_writes_a_posted_label(server):
    server, fingerprint, target = server
    status, body = ask(server, "GET", "/")
    assert status == 200 and b"spectra.js" in body
    status, _ = ask(server, "POST", "/labels", post(fingerprint, target),
                    {"Content-Type": "application/json"})
    assert status == 200
    folder = server.httpd.RequestHandlerClass.root
    assert read_labels(folder / "labels.csv", fingerprint) == {
        target: {"label": "interesting", "note": "two sets of lines",
                 "time": "2026-12-02T10:55:02Z"}}
    status, body = ask(server, "GET", "/labels.csv")
    assert status == 200 and body.decode().splitlines()[1] == "TARGETID,label,note,time"
    status, _ = ask(server, "POST", "/labels", post(fingerprint, target, None))
    assert status == 200 and read_labels(folder / "labels.csv") == {}


def test_server_rejects_anything_but_label_posts(server):
    server, fingerprint, target = server
    refused = [
        (("PUT", "/labels", post(fingerprint, target)), 405),
        (("DELETE", "/labels.csv"), 405),
        (("PATCH", "/labels", post(fingerprint, target)), 405),
        (("POST", "/index.html", post(fingerprint, target)), 404),
        (("POST", "/labels", post("sha256:other", target)), 409),
        (("POST", "/labels", post(fingerprint, "no-such-object")), 400),
        (("POST", "/labels", post(fingerprint, target, "boring")), 400),
        (("POST", "/labels", b"not json"), 400),
        (("POST", "/labels", b"[1, 2]"), 400),
        (("POST", "/labels", b""), 400),
        (("POST", "/labels", b"{}", {"Content-Length": "lots"}), 400),
        (("POST", "/labels", b"x" * 70000), 400),
        (("GET", "/../catalog.fits"), 404),
        (("GET", "/nothing.html"), 404),
    ]
    for request, status in refused:
        assert ask(server, *request)[0] == status, request
    assert not (server.httpd.RequestHandlerClass.root / "labels.csv").exists()


def test_the_server_stops_on_ctrl_c_even_when_started_with_sigint_ignored():
    """A shell without job control starts ``cmd &`` with SIGINT ignored (CI, scripts)."""
    from specsift.cli.review import stop_on

    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_on(signal.SIGINT, signal.SIGTERM)
        for number in saved:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), number)
                time.sleep(1)
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
