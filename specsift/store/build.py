"""Build a store from survey files, one input file at a time, resumably and idempotently.

For each input file: read it (through :data:`specsift.io.READERS`), check its grid against the
store's, preprocess it (:func:`specsift.preprocess.preprocess`) and write its shard; then the
manifest records it. Memory is bounded by one input file. Every object read ends up ingested or
rejected with a reason.

Files are independent until :func:`_finalize`, so they can be ingested by local processes
(``workers``) or a Dask cluster (``scheduler="dask"``); results are taken in input order and
ids seen in several files are resolved when the store is assembled (the copy in the first shard,
in sorted shard order, is kept), so the store is byte-identical whoever ingested which file and
in whichever order or run. One :func:`~specsift.store.lock.store_lock` per store keeps a second
writer out.

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
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from ..errors import SpecsiftInputError
from ..io import get_reader
from ..preprocess import PreprocessConfig, default_config, preprocess, rejects_table
from ..runtime import progress
from .format import (FORMAT, MANIFEST, VERSION, read_manifest, read_wave, shard_key, shard_paths,
                     spectra_shard_writer, write_manifest, write_wave)
from .lock import LOCK_NAME, store_lock
from .tables import read_table, write_table

__all__ = ["IngestReport", "ingest", "SCHEDULERS"]

logger = logging.getLogger("specsift.store")

MANIFEST_INTERVAL_S = 2.0
SCHEDULERS = ("none", "dask")


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


def _foreign_folder(out: Path) -> bool:
    """True for an existing folder with files in it that is not a store (never write there)."""
    if not out.exists() or (out / MANIFEST).exists():
        return False
    return any(p.name != LOCK_NAME for p in out.iterdir())


def _open_or_create(out: Path, survey: str, sample: str, config: PreprocessConfig,
                    chunk_rows: int, overwrite: bool) -> dict:
    """The manifest to continue from: the existing one if compatible, else a fresh one.

    Called with the store's lock held, so the temporary files deleted here are a dead run's.
    """
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
    elif _foreign_folder(out):
        raise SpecsiftInputError("output folder exists and is not a specsift store; choose an "
                                 "empty or new folder", out)
    out.mkdir(parents=True, exist_ok=True)
    return _new_manifest(survey, sample, config, chunk_rows)


def _is_done(out: Path, entry: dict | None, key: str, stat: os.stat_result) -> bool:
    return (entry is not None and entry["size"] == stat.st_size
            and entry["mtime_ns"] == stat.st_mtime_ns
            and all(p.exists() for p in shard_paths(out, key).values()))


def _same_grid(grid: np.ndarray, wave: np.ndarray) -> bool:
    return grid.shape == wave.shape and np.allclose(grid, wave, rtol=0, atol=1e-6 * grid.max())


def _grid_error(grid: np.ndarray, wave: np.ndarray, path: Path) -> SpecsiftInputError:
    return SpecsiftInputError(
        f"wavelength grid ({wave.size} px, {wave.min():.2f}-{wave.max():.2f} A) does not "
        f"match the store's ({grid.size} px, {grid.min():.2f}-{grid.max():.2f} A)", path)


def _drop_repeats(prepared):
    """Move objects whose id appeared earlier in the same file to the rejects (first one kept).

    Ids repeated across files are resolved later, by :func:`_resolve_duplicates`, because which
    copy to keep must not depend on which file was ingested first.
    """
    ids = [str(i).strip() for i in prepared.meta["ID"]]
    seen: set[str] = set()
    dup = np.zeros(len(ids), dtype=bool)
    for i, object_id in enumerate(ids):
        dup[i] = object_id in seen
        seen.add(object_id)
    if not dup.any():
        return prepared
    meta = prepared.meta
    n = int(dup.sum())
    extra = rejects_table(meta["FILENAME"][dup], meta["ROW"][dup], meta["ID"][dup],
                          ["duplicate id"] * n, ["id already ingested from this file"] * n)
    prepared.flux, prepared.ivar = prepared.flux[~dup], prepared.ivar[~dup]
    prepared.meta = meta[~dup]
    prepared.rejects = vstack([prepared.rejects, extra])
    return prepared


def _stack(tables: list[Table]) -> Table:
    """Stack tables that may differ in columns (e.g. one file without Redrock).

    Empty tables are skipped; if all are empty the first is returned, keeping its columns.
    """
    filled = [t for t in tables if len(t)]
    if not filled:
        return tables[0] if tables else Table()
    return vstack(filled, join_type="outer", metadata_conflicts="silent")


def _read_batches(path: Path, survey: str, reader_options: dict):
    """One input file's spectra, streamed in the batches its registered reader yields."""
    return get_reader(survey).iter_spectra([path], **reader_options)


@dataclass(frozen=True)
class _Task:
    """One input file to ingest: plain values, so a worker process or a Dask worker can run it."""

    out: str
    path: str
    key: str
    survey: str
    sample: str
    config: dict
    chunk_rows: int
    reader_options: dict
    grid: np.ndarray | None  # the store's grid, or None while it has none


def _ingest_file(task: _Task) -> dict:
    """Read, preprocess and write one input file's shard; returns its manifest entry and grid."""
    out, path = Path(task.out), Path(task.path)
    config = PreprocessConfig.from_dict(task.config)
    batches = _read_batches(path, task.survey, task.reader_options)
    first = next(batches, None)
    if first is None:
        raise SpecsiftInputError("file holds no spectra", path)
    grid = first.wave if task.grid is None else task.grid
    files = shard_paths(out, task.key)
    metas, rejects, n_read = [], [], 0
    with spectra_shard_writer(files["spectra"], first.wave.size, task.chunk_rows) as append:
        for spectra in itertools.chain([first], batches):
            if not _same_grid(grid, spectra.wave):
                raise _grid_error(grid, spectra.wave, path)
            prepared = _drop_repeats(preprocess(spectra, config, task.sample, path))
            append(prepared.flux, prepared.ivar)
            metas.append(prepared.meta)
            rejects.append(prepared.rejects)
            n_read += len(spectra)
    meta, rejected = _stack(metas), _stack(rejects)
    write_table(meta, files["meta"])
    write_table(rejected, files["rejects"])
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "n_read": n_read, "n_ingested": len(meta), "n_rejected": len(rejected),
            "wave": np.asarray(first.wave, dtype=np.float64)}


def _run_task(task: _Task) -> tuple[str, dict | str]:
    """``(key, entry)``, or ``(key, problem)`` for a file that cannot be ingested."""
    try:
        return task.key, _ingest_file(task)
    except (SpecsiftInputError, OSError) as exc:
        problem = str(exc) if task.path in str(exc) else f"{task.path}: {exc}"
        for stale in shard_paths(Path(task.out), task.key).values():
            stale.unlink(missing_ok=True)
        return task.key, problem


def _map_tasks(tasks: list[_Task], workers: int, scheduler: str, address: str | None):
    """Yield ``_run_task`` results in task order: in this process, local processes or Dask."""
    if scheduler == "dask":
        from ..runtime import dask_client

        with dask_client(workers, address) as client:
            futures = client.map(_run_task, tasks, pure=False)
            for future in futures:  # in input order, whichever worker finishes first
                yield future.result()
    elif workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            yield from pool.map(_run_task, tasks)
    else:
        yield from map(_run_task, tasks)


def _resolve_duplicates(out: Path, manifest: dict, keys: list[str], metas: list[Table]):
    """Keep each id in the first shard (sorted key order) that holds it; the others' rows become
    ``duplicate id`` rejects. Returns ``(metas, rejects, drops)`` per shard, ``drops`` being the
    shard rows left out of the store (the shard files themselves are never rewritten)."""
    owner: dict[str, str] = {}
    kept, extra, drops = [], [], []
    for key, meta in zip(keys, metas):
        ids = [str(i).strip() for i in meta["ID"]] if len(meta) else []
        dup = np.array([i in owner for i in ids], dtype=bool)
        for i in ids:
            owner.setdefault(i, key)
        drops.append(np.flatnonzero(dup).tolist())
        if dup.any():
            detail = [f"id already ingested from {manifest['inputs'][owner[i]]['path']}"
                      for i, d in zip(ids, dup) if d]
            extra.append(rejects_table(meta["FILENAME"][dup], meta["ROW"][dup], meta["ID"][dup],
                                       ["duplicate id"] * len(detail), detail))
            meta = meta[~dup]
        else:
            extra.append(None)
        kept.append(meta)
    return kept, extra, drops


def _finalize(out: Path, manifest: dict) -> None:
    """Write the store-wide catalogue and rejects in shard order and mark the store complete."""
    keys = sorted(manifest["inputs"])
    metas = [read_table(shard_paths(out, k)["meta"]) for k in keys]
    metas, duplicates, drops = _resolve_duplicates(out, manifest, keys, metas)
    rejects = []
    for key, dups in zip(keys, duplicates):
        rejects.append(read_table(shard_paths(out, key)["rejects"]))
        if dups is not None:
            rejects.append(dups)
    rejects = _stack(rejects)
    meta = _stack(metas)
    write_table(meta, out / "meta.parquet")
    write_table(rejects if rejects.colnames else rejects_table([], [], [], [], []),
                out / "rejects.parquet")
    manifest["shards"] = [{"key": k, "n": len(m), **({"drop": d} if d else {})}
                          for k, m, d in zip(keys, metas, drops)]
    manifest["n_read"] = int(sum(manifest["inputs"][k]["n_read"] for k in keys))
    manifest["n_ingested"] = int(sum(len(m) for m in metas))
    manifest["n_rejected"] = manifest["n_read"] - manifest["n_ingested"]
    manifest["complete"] = manifest["wave_sha256"] is not None
    write_manifest(out, manifest)


def _record(out: Path, manifest: dict, report: IngestReport, path: str, key: str,
            result: dict | str) -> None:
    """Enter one file's result in the manifest; the first grid seen becomes the store's."""
    if isinstance(result, dict):
        wave = result.pop("wave")
        if manifest["wave_sha256"] is None:
            manifest["wave_sha256"] = write_wave(out, wave)
        else:
            grid = read_wave(out, manifest["wave_sha256"])
            if not _same_grid(grid, wave):  # ingested before the store had a grid
                for stale in shard_paths(out, key).values():
                    stale.unlink(missing_ok=True)
                result = str(_grid_error(grid, wave, Path(path)))
    if isinstance(result, str):
        logger.error("skipping unreadable input: %s", result)
        manifest["failed"][key] = {"path": path, "problem": result}
        manifest["inputs"].pop(key, None)  # it changed and broke since
        report.failed[path] = result
        return
    manifest["inputs"][key] = result
    manifest["failed"].pop(key, None)
    report.files_ingested.append(path)
    logger.info("%s: %d read, %d ingested, %d rejected", Path(path).name, result["n_read"],
                result["n_ingested"], result["n_rejected"])


def ingest(inputs, out: str | Path, survey: str, sample: str = "all",
           config: PreprocessConfig | None = None, chunk_rows: int = 256,
           overwrite: bool = False, reader_options: dict | None = None, workers: int = 1,
           scheduler: str = "none", address: str | None = None) -> IngestReport:
    """Ingest survey files into the store at ``out`` (created, resumed or extended).

    Arguments:
        inputs: files, folders or globs (see :func:`specsift.io.expand_paths`).
        out: the store folder.
        survey: a survey of :data:`specsift.io.READERS` (``desi``, ``sdss``, ``lamost``,
            ``apogee``).
        sample: which sample's cuts to apply (see :mod:`specsift.preprocess.config`).
        config: preprocessing configuration; defaults to the survey's.
        chunk_rows: objects per stored chunk (the unit of reading and shuffling).
        overwrite: discard an existing store at ``out`` first.
        reader_options: passed to the survey reader.
        workers: input files ingested at once, by local processes (or Dask workers).
        scheduler: ``none`` (local processes) or ``dask`` (a local cluster of ``workers``, or
            the cluster at ``address``; every worker must see ``out`` and the inputs).
        address: a Dask scheduler address (``tcp://host:8786``).

    Returns:
        An :class:`IngestReport`; ``failed`` names every input file that could not be ingested.
        The store is byte-identical whatever ``workers`` and ``scheduler``.
    """
    out = Path(out)
    reader = get_reader(survey)
    survey = reader.survey
    config = config or default_config(survey)
    config.cuts(sample)  # unknown sample: fail before touching anything
    if int(chunk_rows) < 1:
        raise SpecsiftInputError(f"chunk_rows must be at least 1, not {chunk_rows}")
    if int(workers) < 1:
        raise SpecsiftInputError(f"workers must be at least 1, not {workers}")
    if scheduler not in SCHEDULERS:
        raise SpecsiftInputError(f"unknown scheduler {scheduler!r}; choose one of "
                                 f"{', '.join(SCHEDULERS)}")
    files = sorted(dict.fromkeys(p.resolve() for p in reader.files(inputs)))
    if _foreign_folder(out):  # before the lock file is created there
        raise SpecsiftInputError("output folder exists and is not a specsift store; choose an "
                                 "empty or new folder", out)
    with store_lock(out):
        return _ingest_locked(files, out, survey, sample, config, int(chunk_rows), overwrite,
                              reader_options or {}, int(workers), scheduler, address)


def _ingest_locked(files, out, survey, sample, config, chunk_rows, overwrite, reader_options,
                   workers, scheduler, address) -> IngestReport:
    manifest = _open_or_create(out, survey, sample, config, chunk_rows, overwrite)
    manifest["complete"] = False
    write_manifest(out, manifest)
    report = IngestReport()
    grid = read_wave(out, manifest["wave_sha256"]) if manifest["wave_sha256"] else None
    tasks = []
    for path in files:
        key = shard_key(path)
        if _is_done(out, manifest["inputs"].get(key), key, path.stat()):
            report.files_skipped.append(str(path))
        else:
            tasks.append(_Task(str(out), str(path), key, survey, sample, config.to_dict(),
                               chunk_rows, reader_options, grid))
    saved = time.monotonic()
    try:
        results = _map_tasks(tasks, workers, scheduler, address)
        for task, (key, result) in zip(tasks, progress(results, total=len(tasks), desc="ingest",
                                                         unit="file")):
            _record(out, manifest, report, task.path, key, result)
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
