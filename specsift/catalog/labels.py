"""A reviewer's labels of catalogue objects: the ``labels.csv`` file and the loopback server.

``labels.csv`` has exactly the columns ``TARGETID,label,note,time`` (``label`` one of
:data:`LABELS`, ``time`` ISO 8601 UTC), preceded by one ``#`` comment line that names the
catalogue the labels belong to::

    # specsift labels; catalog=sha256:3f2a...; objects=28000
    TARGETID,label,note,time
    39627745,interesting,two sets of lines,2026-12-02T10:55:02Z

The fingerprint (:func:`catalog_fingerprint`) is the sha256 of the catalogue's sorted TARGETIDs,
so the labels stay valid for a re-scored or re-ranked catalogue of the same objects and are
refused, with a message saying so, for any other. The file is written by the review page's
export button, by :class:`LabelServer` (``specsift review --serve``) and read by
``specsift rerank``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import SpecsiftInputError

__all__ = ["LABELS", "COLUMNS", "catalog_fingerprint", "read_labels", "write_labels",
           "LabelBook", "LabelServer"]

logger = logging.getLogger("specsift.catalog")

#: the values of the ``label`` column
LABELS = ("interesting", "not_interesting", "artefact")
#: the columns of ``labels.csv``, in this order
COLUMNS = ("TARGETID", "label", "note", "time")

_HEADER = re.compile(r"#\s*specsift labels;\s*catalog=(?P<fp>[\w:]+)")


def catalog_fingerprint(target_ids) -> str:
    """``sha256:<hex>`` of the sorted TARGETIDs (as text): the same for every catalogue of the
    same objects, whatever its scores or row order."""
    ids = sorted(str(t) for t in np.asarray(target_ids).tolist())
    return "sha256:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()


def now() -> str:
    """The current UTC time as the ``time`` column writes it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(path, line: int, target: str, label: str, known: set[str] | None) -> None:
    if label not in LABELS:
        raise SpecsiftInputError(f"label {label!r} is not one of {', '.join(LABELS)}",
                                 path=path, row=line, object_id=target or None)
    if known is not None and target not in known:
        raise SpecsiftInputError("TARGETID is not in the catalogue", path=path, row=line,
                                 object_id=target)


def read_labels(path: str | Path, fingerprint: str | None = None,
                target_ids=None) -> dict[str, dict]:
    """Labels of ``path`` as ``{TARGETID (str): {"label", "note", "time"}}``; later rows win.

    Arguments:
        path: a ``labels.csv``.
        fingerprint: the catalogue's :func:`catalog_fingerprint`; a file recorded for another
            catalogue is refused. A file without the comment line (written by hand) is accepted
            when all its TARGETIDs are in ``target_ids``.
        target_ids: the catalogue's TARGETIDs; an unknown one is refused, naming its row.

    Raises:
        SpecsiftInputError: another catalogue, wrong columns, an unknown TARGETID or a label
            that is not one of :data:`LABELS` (file, row and problem in one line).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such label file")
    text = path.read_text(encoding="utf-8")
    known = None if target_ids is None else {str(t) for t in np.asarray(target_ids).tolist()}
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        match = _HEADER.match(lines[skip])
        if match and fingerprint and match["fp"] != fingerprint:
            raise SpecsiftInputError(
                f"these labels belong to another catalogue (recorded {match['fp'][:19]}..., this "
                f"catalogue is {fingerprint[:19]}...); label this catalogue's own review page",
                path=path)
        skip += 1
    reader = csv.reader(io.StringIO("".join(lines[skip:])))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise SpecsiftInputError(f"expected the columns {','.join(COLUMNS)}, found "
                                 f"{','.join(header or []) or 'nothing'}", path=path)
    labels = {}
    for number, fields in enumerate(reader, start=skip + 2):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != len(COLUMNS):
            raise SpecsiftInputError(f"{len(fields)} fields, expected {len(COLUMNS)}", path=path,
                                     row=number)
        target, label, note, time = (f.strip() for f in fields)
        _check(path, number, target, label, known)
        labels[target] = {"label": label, "note": note, "time": time}
    return labels


def write_labels(path: str | Path, labels: dict[str, dict], fingerprint: str,
                 n_objects: int) -> Path:
    """Write ``labels`` (as :func:`read_labels` returns them) atomically, sorted by time then id."""
    buffer = io.StringIO()
    buffer.write(f"# specsift labels; catalog={fingerprint}; objects={n_objects}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for target, entry in sorted(labels.items(), key=lambda kv: (kv[1].get("time", ""), kv[0])):
        writer.writerow([target, entry["label"], entry.get("note", ""), entry.get("time", "")])
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return Path(path)


class LabelBook:
    """The labels of one catalogue, kept in memory and written through to ``labels.csv``.

    Arguments:
        path: the ``labels.csv`` to keep (read first when it exists: labels survive a restart).
        fingerprint: the catalogue's :func:`catalog_fingerprint`.
        target_ids: the catalogue's TARGETIDs (labels of other objects are refused).
    """

    def __init__(self, path: str | Path, fingerprint: str, target_ids):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.known = {str(t) for t in np.asarray(target_ids).tolist()}
        self.labels = read_labels(self.path, fingerprint, list(self.known)) \
            if self.path.exists() else {}
        self._lock = threading.Lock()

    def set(self, target: str, label: str | None, note: str = "", time: str | None = None) -> None:
        """Label ``target`` (``label=None`` removes its label) and rewrite the file."""
        target = str(target)
        if label is not None:
            _check(self.path, None, target, label, self.known)
        elif target not in self.known:
            _check(self.path, None, target, LABELS[0], self.known)
        with self._lock:
            if label is None:
                self.labels.pop(target, None)
            else:
                self.labels[target] = {"label": label, "note": str(note)[:2000],
                                       "time": time or now()}
            write_labels(self.path, self.labels, self.fingerprint, len(self.known))


class _Handler(BaseHTTPRequestHandler):
    server_version = "specsift-review"
    timeout = 10  # seconds: Chromium opens spare connections that never send a request
    book: LabelBook
    root: Path

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        logger.debug("review server: " + format, *args)

    def _reply(self, status: HTTPStatus, body: bytes = b"", kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.split("?", 1)[0].split("#", 1)[0]
        name = "index.html" if name in ("", "/") else name.lstrip("/")
        target = (self.root / name).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return self._reply(HTTPStatus.NOT_FOUND, b"not found")
        kinds = {".html": "text/html; charset=utf-8", ".js": "text/javascript",
                 ".css": "text/css", ".csv": "text/csv; charset=utf-8", ".png": "image/png"}
        self._reply(HTTPStatus.OK, target.read_bytes(),
                    kinds.get(target.suffix, "application/octet-stream"))

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        if self.path != "/labels":
            return self._reply(HTTPStatus.NOT_FOUND, b"only POST /labels is served")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or not 0 < int(length) <= 65536:
            return self._reply(HTTPStatus.BAD_REQUEST, b"a label post is a small JSON object")
        try:
            post = json.loads(self.rfile.read(int(length)))
            if not isinstance(post, dict):
                raise ValueError("not a JSON object")
            if post.get("fingerprint") != self.book.fingerprint:
                return self._reply(HTTPStatus.CONFLICT,
                                   b"this label is for another catalogue than the served one")
            self.book.set(str(post["TARGETID"]), post.get("label"), post.get("note") or "",
                          post.get("time"))
        except (ValueError, KeyError, TypeError) as error:
            return self._reply(HTTPStatus.BAD_REQUEST, str(error).encode()[:500])
        self._reply(HTTPStatus.OK, b'{"ok": true}', "application/json")

    def _refuse(self):
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, b"only GET and POST /labels")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse


class LabelServer:
    """Serve a review folder on 127.0.0.1 and write each posted label to its ``labels.csv``.

    Only ``GET`` of files inside the folder and ``POST /labels`` (a JSON object with
    ``fingerprint``, ``TARGETID``, ``label`` (one of :data:`LABELS`, or null to remove),
    ``note``, ``time``) are answered; anything else gets a 4xx status.

    Arguments:
        folder: the review folder written by :func:`specsift.plots.review.write_review`.
        book: the :class:`LabelBook` of that folder's catalogue.
        port: TCP port on 127.0.0.1 (0: any free port; see :attr:`url`).
    """

    def __init__(self, folder: str | Path, book: LabelBook, port: int = 0):
        handler = type("Handler", (_Handler,), {"book": book, "root": Path(folder).resolve()})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> "LabelServer":
        """Serve from a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
