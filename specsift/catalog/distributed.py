"""Score a store in fixed chunks, locally or spread over Dask workers / accelerate processes.

The store rows are cut into chunks of ``chunk_size`` consecutive rows *independently of the
number of workers*; each chunk is scored with the same batches wherever it runs and lands in its
own part file. Merging the parts in chunk order therefore gives a catalogue identical to a
single-process run, and a killed run (of any scheduler) resumes from the parts already written.

Dask is the engine for CPU workers (a local cluster, or an existing one via its address);
accelerate for several GPUs (``accelerate launch --num_processes N -m specsift.cli.main score
... --scheduler accelerate``): each process scores every N-th pending chunk on its own device and
the main process merges.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import sha256_file
from ..errors import SpecsiftInputError
from ..models.defaults import INFERENCE_BATCH
from ..runtime import DEFAULT_DEVICE, progress
from .classify import StarGalaxyRule
from .writer import CatalogParts, write_catalog

__all__ = ["ScoreJob", "score_catalog", "SCHEDULERS", "fdr_path", "check_fdr"]

logger = logging.getLogger("specsift.catalog")

SCHEDULERS = ("none", "dask", "accelerate")


@dataclass(frozen=True)
class ScoreJob:
    """Everything a worker needs to score chunks: plain paths and numbers, cheap to ship."""

    store: str
    galaxy_model: str
    star_model: str
    out: str
    batch_size: int = INFERENCE_BATCH
    chunk_size: int = 8192
    device: str = DEFAULT_DEVICE
    torch_threads: int = 0  # 0: leave torch's default

    @property
    def parts(self) -> CatalogParts:
        return CatalogParts(self.out, self.fingerprint())

    def fingerprint(self) -> dict:
        """The inputs that determine the scores: parts computed from other inputs are not reused."""
        return {"store": str(Path(self.store).resolve()), "n_rows": len(_open_store(self.store)),
                "galaxy_model": _model_hashes(self.galaxy_model),
                "star_model": _model_hashes(self.star_model),
                "batch_size": self.batch_size, "chunk_size": self.chunk_size}

    def chunk_rows(self, chunk: int, n_rows: int) -> np.ndarray:
        return np.arange(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, n_rows),
                         dtype=np.int64)


def _model_hashes(path: str) -> dict:
    """sha256 of every weight file of a model directory (identifies the exact model)."""
    return {p.name: sha256_file(p) for p in sorted(Path(path).glob("*.safetensors"))}


def _stamp(path: str) -> tuple:
    """Names, sizes and modification times of a folder's files: a cache key that changes when
    a store is rebuilt or a model retrained in place."""
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(Path(path).glob("*")) if p.is_file())


def _open_store(path: str):
    """The store at ``path``, opened once per process (workers score many chunks of it)."""
    return _cached_store(path, _stamp(path))


@functools.lru_cache(maxsize=4)
def _cached_store(path: str, stamp: tuple):
    from ..store import SpectraStore

    return SpectraStore(path)


def _load_models(galaxy: str, star: str, device: str):
    """Both pipelines, loaded (and hash-checked) once per process."""
    return _cached_models(galaxy, star, device, _stamp(galaxy), _stamp(star))


@functools.lru_cache(maxsize=4)
def _cached_models(galaxy: str, star: str, device: str, *stamps):
    from .scoring import SurveyModel

    return SurveyModel.load(galaxy, device), SurveyModel.load(star, device)


def _score_chunk(job: ScoreJob, chunk: int, device: str | None = None) -> int:
    """Score one chunk and write its part file; runs in whichever process the scheduler picks."""
    import torch

    from ..runtime import resolve_device
    from .scoring import score_rows

    if job.torch_threads:
        torch.set_num_threads(job.torch_threads)
    device = str(resolve_device(device or job.device))
    store = _open_store(job.store)
    galaxy, star = _load_models(job.galaxy_model, job.star_model, device)
    rows = job.chunk_rows(chunk, len(store))
    CatalogParts(job.out).write(chunk, score_rows(store, galaxy, star, rows, job.batch_size,
                                                  device))
    return chunk


def _run_local(job: ScoreJob, pending: list[int]) -> None:
    for chunk in progress(pending, desc="score", unit="chunk"):
        _score_chunk(job, chunk)


def _run_dask(job: ScoreJob, pending: list[int], workers: int, address: str | None) -> None:
    from dask.distributed import as_completed

    from ..runtime import dask_client

    with dask_client(workers, address) as client:
        futures = client.map(_score_chunk, [job] * len(pending), pending, pure=False)
        for future in progress(as_completed(futures), total=len(futures), desc="score",
                               unit="chunk"):
            future.result()  # re-raises a worker's exception here


def _accelerate_state(job: ScoreJob):
    """accelerate's process state; on CPU it must be asked for explicitly (``torchrun`` etc.)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=job.device == "cpu" or not torch.cuda.is_available())


def _run_accelerate(job: ScoreJob, pending: list[int]) -> bool:
    """Score this process's share; True on the main process (which then merges)."""
    state = _accelerate_state(job)
    mine = pending[state.process_index::state.num_processes]
    logger.info("accelerate process %d/%d: %d chunks on %s", state.process_index,
                state.num_processes, len(mine), state.device)
    for chunk in mine:
        _score_chunk(job, chunk, device=str(state.device))
    state.wait_for_everyone()
    return state.is_main_process


def fdr_path(out: str | Path, fdr: float) -> Path:
    """Where ``score --fdr`` writes its selection: ``catalog.parquet`` -> ``catalog.q0.05.parquet``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.q{fdr:g}{out.suffix}")


def check_fdr(fdr: float | None) -> None:
    """A false-discovery rate must lie strictly between 0 and 1."""
    if fdr is not None and not 0.0 < fdr < 1.0:
        raise SpecsiftInputError(f"--fdr must lie strictly between 0 and 1 (a false-discovery rate such "
                         f"as 0.05), not {fdr:g}")


def score_catalog(job: ScoreJob, workers: int = 1, scheduler: str = "none",
                  rule: StarGalaxyRule | None = None, address: str | None = None,
                  fdr: float | None = None) -> Path | None:
    """Score every object of ``job.store`` and write the catalogue ``job.out``; resumable.

    With ``fdr``, the objects with ``OUTLIER_QVALUE < fdr`` are also written to
    :func:`fdr_path`. Returns the catalogue path (None on non-main accelerate processes).
    """
    check_fdr(fdr)
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    rule = rule or StarGalaxyRule()
    store = _open_store(job.store)
    n_rows = len(store)
    n_chunks = -(-n_rows // job.chunk_size)
    parts = job.parts
    if scheduler == "accelerate":
        state = _accelerate_state(job)
        if state.is_main_process:
            parts.prepare()
        state.wait_for_everyone()  # nobody lists the parts before the main process vetted them
    else:
        parts.prepare()
    pending = sorted(set(range(n_chunks)) - parts.done())
    logger.info("scoring %d objects in %d chunks (%d to do) with scheduler=%s", n_rows, n_chunks,
                len(pending), scheduler)
    if scheduler == "dask" and pending:
        _run_dask(job, pending, workers, address)
    elif scheduler == "accelerate":
        if not _run_accelerate(job, pending):
            return None
    else:
        _run_local(job, pending)
    return _merge(job, parts, n_chunks, store, rule, fdr)


def _merge(job: ScoreJob, parts: CatalogParts, n_chunks: int, store, rule: StarGalaxyRule,
           fdr: float | None) -> Path:
    from ..models.modeldir import ModelDir
    from .calibration import OUTLIER_WEIGHTS
    from .scoring import LEGACY_SCORE, assemble_catalog
    from .stellar import SCORE_FORMULA

    table = assemble_catalog(parts.read(n_chunks), store.meta, rule)
    calibrated = ModelDir(job.galaxy_model).has_weights(OUTLIER_WEIGHTS)
    if not calibrated:
        logger.warning("%s has no outlier calibration (a model written before it existed): "
                       "OUTLIER_SCORE falls back to -LOGP_GALAXY, and OUTLIER_PVALUE, "
                       "OUTLIER_QVALUE and OUTLIER_REASON are empty; rerun `specsift train-flow` "
                       "on the model to fill them", job.galaxy_model)
    metadata = {"STORE": str(Path(job.store).resolve()),
                "GALMODEL": str(Path(job.galaxy_model).resolve()),
                "STARMODL": str(Path(job.star_model).resolve()),
                "SURVEY": str(getattr(store, "survey", "")),
                "SCORE": SCORE_FORMULA if calibrated else LEGACY_SCORE,
                "PVALUE": "Bonferroni over the residual evidence (conformal against the galaxy "
                          "model's validation split), the star-likeness and the star blend "
                          "tests (against the catalogue's validation-split galaxies); QVALUE: "
                          "Benjamini-Hochberg over the objects the survey reported as galaxies "
                          "(SPECTYPE)",
                "MODELS": json.dumps({"galaxy": _model_hashes(job.galaxy_model),
                                      "star": _model_hashes(job.star_model)}),
                **rule.metadata()}
    out = write_catalog(table, job.out, metadata)
    parts.remove()
    if fdr is not None:
        q = np.nan_to_num(np.asarray(table["OUTLIER_QVALUE"], dtype=float), nan=np.inf)
        chosen = table[q < fdr]
        chosen.sort("RANK")
        write_catalog(chosen, fdr_path(out, fdr), {**metadata, "FDR": fdr})
        logger.info("%d objects with OUTLIER_QVALUE < %g written to %s", len(chosen), fdr,
                    fdr_path(out, fdr))
    return out

