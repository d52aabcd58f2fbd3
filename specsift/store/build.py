"""Build a store from survey files, one input file at a time, resumably and idempotently.

For each input file: read it (``specsift.io.read``), check its grid against the store's,
preprocess it (:func:`specsift.preprocess.preprocess`), drop ids already ingested from another
file (as rejects), write its shard, then record it in the manifest. Memory is bounded by one
input file. Every object read ends up ingested or rejected with a reason.

A file that cannot be read at all (truncated, corrupt, missing HDU, a different wavelength grid)
does not stop the run: it is recorded in the manifest's ``failed`` list, the other files are
ingested, and the run reports the failures (the CLI exits with status 2 naming each file). A
rerun retries failed files and skips finished ones.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from ..errors import SpecsiftInputError
from ..io import SURVEYS, expand_paths, read
from ..preprocess import PreprocessConfig, default_config, preprocess, rejects_table
from ..runtime import progress
from .format import (FORMAT, MANIFEST, VERSION, read_manifest, read_wave, shard_key, shard_paths,
                     spectra_shard_writer, write_manifest, write_wave)
from .tables import read_table, write_table

__all__ = ["IngestReport", "ingest"]

logger = logging.getLogger("specsift.store")

MANIFEST_INTERVAL_S = 2.0


@dataclass
class IngestReport:
    """What one ingest run did (the totals cover the whole store, not just this run)."""

    n_read: int = 0
    n_ingested: int = 0
    n_rejected: int = 0
    files_ingested: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _new_manifest(survey: str, sample: str, config: PreprocessConfig, chunk_rows: int) -> dict:
    return {"format": FORMAT, "version": VERSION, "survey": survey, "sample": sample,
            "config": config.to_dict(), "config_sha256": config.digest(),
            "chunk_rows": int(chunk_rows), "wave_sha256": None, "inputs": {}, "failed": {},
            "shards": [], "complete": False}


def _open_or_create(out: Path, survey: str, sample: str, config: PreprocessConfig,
                    chunk_rows: int, overwrite: bool) -> dict:
    """The manifest to continue from: the existing one if compatible, else a fresh one."""
    if (out / MANIFEST).exists():
        manifest = read_manifest(out)
        if overwrite:
            for name in (MANIFEST, "wave.npy", "meta.parquet", "rejects.parquet"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "shards", ignore_errors=True)
        else:
            # temporary files of a killed run (see specsift.atomic.atomic_path) are never reused
            for stale in [*out.glob(".*.tmp*"), *(out / "shards").glob(".*.tmp*")]:
                stale.unlink(missing_ok=True)
            wanted = {"survey": survey, "sample": sample, "config_sha256": config.digest(),
                      "chunk_rows": int(chunk_rows)}
            differs = [k for k, v in wanted.items() if manifest.get(k) != v]
            if differs:
                raise SpecsiftInputError(
                    f"store was built with a different {', '.join(differs)}; use --overwrite to "
                    f"rebuild it or choose another --out", out)
            return manifest
    elif out.exists() and any(out.iterdir()):
        raise SpecsiftInputError("output folder exists and is not a specsift store; choose an "
                                 "empty or new folder", out)
    out.mkdir(parents=True, exist_ok=True)
    return _new_manifest(survey, sample, config, chunk_rows)


def _is_done(out: Path, entry: dict | None, key: str, stat: os.stat_result) -> bool:
    return (entry is not None and entry["size"] == stat.st_size
            and entry["mtime_ns"] == stat.st_mtime_ns
            and all(p.exists() for p in shard_paths(out, key).values()))


def _known_ids(out: Path, manifest: dict) -> dict[str, str]:
    """id (as text) -> shard key, for every object already in the store."""
    known: dict[str, str] = {}
    for key in manifest["inputs"]:
        ids = read_table(shard_paths(out, key)["meta"], ["ID"])["ID"]
        known.update(dict.fromkeys((str(i).strip() for i in ids), key))
    return known


def _check_grid(out: Path, manifest: dict, wave: np.ndarray, path: Path) -> None:
    """First file sets the store's grid; a later file on another grid is refused by name."""
    if manifest["wave_sha256"] is None:
        manifest["wave_sha256"] = write_wave(out, wave)
        return
    grid = read_wave(out, manifest["wave_sha256"])
    if grid.shape != wave.shape or not np.allclose(grid, wave, rtol=0, atol=1e-6 * grid.max()):
        raise SpecsiftInputError(
            f"wavelength grid ({wave.size} px, {wave.min():.2f}-{wave.max():.2f} A) does not "
            f"match the store's ({grid.size} px, {grid.min():.2f}-{grid.max():.2f} A)", path)


def _drop_duplicates(prepared, known: dict[str, str], key: str, manifest: dict):
    """Move objects whose id is already in the store (or earlier in this file) to the rejects."""
    owners = [known.get(str(i).strip()) for i in prepared.meta["ID"]]
    dup = np.array([owner is not None for owner in owners], dtype=bool)
    seen: set[str] = set()
    for i, object_id in enumerate(str(i).strip() for i in prepared.meta["ID"]):
        dup[i] |= object_id in seen  # twice within one batch
        seen.add(object_id)
    if not dup.any():
        return prepared
    detail = ["id already ingested from " + ("this file" if owners[i] in (None, key)
                                             else manifest["inputs"][owners[i]]["path"])
              for i in np.flatnonzero(dup)]
    meta = prepared.meta
    extra = rejects_table(meta["FILENAME"][dup], meta["ROW"][dup], meta["ID"][dup],
                          ["duplicate id"] * len(detail), detail)
    prepared.flux, prepared.ivar = prepared.flux[~dup], prepared.ivar[~dup]
    prepared.meta = meta[~dup]
    prepared.rejects = vstack([prepared.rejects, extra])
    return prepared


def _read_batches(path: Path, survey: str, reader_options: dict):
    """The file's spectra in batches when its reader can stream (``iter_batches``), else whole."""
    module = import_module(f"specsift.io.{survey}")
    if hasattr(module, "iter_batches"):
        return module.iter_batches([path], **reader_options)
    return iter([read([path], survey=survey, **reader_options)])


def _stack(tables: list[Table]) -> Table:
    """Stack tables that may differ in columns (e.g. one file without Redrock).

    Empty tables are skipped; if all are empty the first is returned, keeping its columns.
    """
    filled = [t for t in tables if len(t)]
    if not filled:
        return tables[0] if tables else Table()
    return vstack(filled, join_type="outer", metadata_conflicts="silent")


def _ingest_file(out: Path, path: Path, key: str, manifest: dict, known: dict[str, str],
                 survey: str, sample: str, config: PreprocessConfig, chunk_rows: int,
                 reader_options: dict) -> dict:
    """Read, preprocess and write one input file's shard; returns its manifest entry.

    ``known`` gains this file's ids as they are written; on failure the caller drops them again.
    """
    for object_id in [k for k, v in known.items() if v == key]:
        del known[object_id]  # a re-ingested (changed) file replaces its old objects
    batches = _read_batches(path, survey, reader_options)
    first = next(batches, None)
    if first is None:
        raise SpecsiftInputError("file holds no spectra", path)
    files = shard_paths(out, key)
    metas, rejects, n_read = [], [], 0
    with spectra_shard_writer(files["spectra"], first.wave.size, chunk_rows) as append:
        for spectra in itertools.chain([first], batches):
            _check_grid(out, manifest, spectra.wave, path)
            prepared = _drop_duplicates(preprocess(spectra, config, sample, path), known, key,
                                        manifest)
            append(prepared.flux, prepared.ivar)
            known.update(dict.fromkeys((str(i).strip() for i in prepared.meta["ID"]), key))
            metas.append(prepared.meta)
            rejects.append(prepared.rejects)
            n_read += len(spectra)
    meta, rejected = _stack(metas), _stack(rejects)
    write_table(meta, files["meta"])
    write_table(rejected, files["rejects"])
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "n_read": n_read, "n_ingested": len(meta), "n_rejected": len(rejected)}


def _finalize(out: Path, manifest: dict) -> None:
    """Write the store-wide catalogue and rejects in shard order and mark the store complete."""
    keys = sorted(manifest["inputs"])
    rejects = _stack([read_table(shard_paths(out, k)["rejects"]) for k in keys])
    write_table(_stack([read_table(shard_paths(out, k)["meta"]) for k in keys]),
                out / "meta.parquet")
    write_table(rejects if rejects.colnames else rejects_table([], [], [], [], []),
                out / "rejects.parquet")
    manifest["shards"] = [{"key": k, "n": manifest["inputs"][k]["n_ingested"]} for k in keys]
    for name in ("n_read", "n_ingested", "n_rejected"):
        manifest[name] = int(sum(manifest["inputs"][k][name] for k in keys))
    manifest["complete"] = manifest["wave_sha256"] is not None
    write_manifest(out, manifest)


def _input_files(inputs, survey: str) -> list[Path]:
    """Expand ``inputs``; a folder yields the files its survey reader reads (``PATTERNS``)."""
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; choose one of {', '.join(SURVEYS)}")
    module = import_module(f"specsift.io.{survey}")
    patterns = getattr(module, "PATTERNS", None)
    return expand_paths(inputs, patterns) if patterns else expand_paths(inputs)


def _ingest_or_record(out: Path, path: Path, manifest: dict, known: dict[str, str],
                      report: IngestReport, *args) -> None:
    """Ingest one input file unless already done; an unreadable file is recorded, not raised."""
    key = shard_key(path)
    if _is_done(out, manifest["inputs"].get(key), key, path.stat()):
        report.files_skipped.append(str(path))
        return
    try:
        entry = _ingest_file(out, path, key, manifest, known, *args)
    except (SpecsiftInputError, OSError) as exc:
        problem = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        logger.error("skipping unreadable input: %s", problem)
        manifest["failed"][key] = {"path": str(path), "problem": problem}
        for object_id in [k for k, v in known.items() if v == key]:
            del known[object_id]
        if manifest["inputs"].pop(key, None) is not None:  # it changed and broke since
            for stale in shard_paths(out, key).values():
                stale.unlink(missing_ok=True)
        report.failed[str(path)] = problem
        return
    manifest["inputs"][key] = entry
    manifest["failed"].pop(key, None)
    report.files_ingested.append(str(path))
    logger.info("%s: %d read, %d ingested, %d rejected", path.name, entry["n_read"],
                entry["n_ingested"], entry["n_rejected"])


def ingest(inputs, out: str | Path, survey: str, sample: str = "all",
           config: PreprocessConfig | None = None, chunk_rows: int = 256,
           overwrite: bool = False, reader_options: dict | None = None) -> IngestReport:
    """Ingest survey files into the store at ``out`` (created, resumed or extended).

    Arguments:
        inputs: files, folders or globs (see :func:`specsift.io.expand_paths`).
        out: the store folder.
        survey: ``desi``, ``sdss``, ``lamost`` or ``apogee``.
        sample: which sample's cuts to apply (see :mod:`specsift.preprocess.config`).
        config: preprocessing configuration; defaults to the survey's.
        chunk_rows: objects per stored chunk (the unit of reading and shuffling).
        overwrite: discard an existing store at ``out`` first.
        reader_options: passed to the survey reader.

    Returns:
        An :class:`IngestReport`; ``failed`` names every input file that could not be ingested.
    """
    out = Path(out)
    survey = survey.lower()
    config = config or default_config(survey)
    config.cuts(sample)  # unknown sample: fail before touching anything
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    files = sorted(dict.fromkeys(p.resolve() for p in _input_files(inputs, survey)))
    manifest = _open_or_create(out, survey, sample, config, chunk_rows, overwrite)
    manifest["complete"] = False
    write_manifest(out, manifest)
    known = _known_ids(out, manifest)
    report = IngestReport()
    saved = time.monotonic()
    try:
        for path in progress(files, desc="ingest", unit="file"):
            _ingest_or_record(out, path, manifest, known, report, survey, sample, config,
                              chunk_rows, reader_options or {})
            # at most every few seconds: one write per file would cost O(n^2) for one-spectrum
            # files; a shard finished but not yet recorded is simply redone by a resumed run
            if time.monotonic() - saved > MANIFEST_INTERVAL_S:
                write_manifest(out, manifest)
                saved = time.monotonic()
    except BaseException:  # interrupted or crashed: record every finished shard, then re-raise
        write_manifest(out, manifest)
        raise
    _finalize(out, manifest)
    report.n_read, report.n_ingested, report.n_rejected = (
        manifest["n_read"], manifest["n_ingested"], manifest["n_rejected"])
    return report
