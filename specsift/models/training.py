"""Two-phase training of the spectrum autoencoder, reproducible and resumable from a seed.

Phase 1 fits the reconstruction alone (fidelity loss). Phase 2 adds the similarity and consistency
losses, which make the latents redshift invariant and keep them from collapsing. Each phase has
its own one-cycle learning-rate schedule and its own early stopping on the validation split (the
best validation epoch's weights are kept).

Which epoch is best is judged by the validation loss with each object's fidelity capped at that of
reduced chi-square ``selection_cap`` (10): an object worse than that is a misfit whatever the
epoch (an injected anomaly, a quasar in a galaxy sample), and its large, fluctuating loss would
otherwise choose the epoch. On the demo's galaxies one such object kept the weights of epoch 1 of
10 and stopped phase 1 at epoch 6 (docs/autoencoder.md). The logged losses stay uncapped.

Optionally (``decoder_epochs``), a last phase refits the decoder alone on the frozen encoder, with
the fidelity loss. Why: phase 2 moves the latents, and the decoder trails them (the reduced
chi-square rises); with the encoder frozen the latents, hence their redshift invariance, stay
exactly as phase 2 left them while the reconstruction catches up.

Reproducibility: the data order and the augmentation noise of epoch ``e`` are drawn from
``(seed, e)`` alone, and a checkpoint written atomically after every epoch holds the weights,
optimizer, scheduler, early-stopping state and RNG state, so ``resume`` continues a killed run to
the same weights, bit for bit on the same hardware, as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from ..errors import SpecsiftInputError
from ..runtime import DEFAULT_DEVICE, progress, resolve_device
from .augment import redshift_copy
from .autoencoder import SpectrumAutoencoder
from .configs import architecture
from .defaults import AUTOENCODER as DEFAULTS
from .inputs import FLAG_NAMES, clean_batch
from .instrument import Instrument
from .losses import chi2_terms, consistency_loss, fidelity_loss, similarity_loss
from .modeldir import AUTOENCODER_WEIGHTS, ModelDir

__all__ = ["AutoencoderTrainer", "auto_batch_size", "kept_epoch", "make_optimizer",
           "redshift_range", "epoch_seed", "mean_rest_spectrum"]

logger = logging.getLogger("specsift.models")

PHASES = ("fidelity", "invariance", "decoder")


@dataclass
class _TrainingState:
    """Where a training run stands: what a checkpoint records so that a resume continues it."""

    phase: int = 0              # index into PHASES
    epoch_in_phase: int = 0
    epoch: int = 0              # over all phases (seeds the epoch's shuffle and augmentation)
    best: float = math.inf      # best validation selection loss of this phase
    stale: int = 0              # epochs since it improved (early stopping)
    best_model: dict | None = None   # weights of that epoch
    scheduler: dict | None = None    # learning-rate schedule, None at a phase start

    def to_checkpoint(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"best": float(self.best)}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "_TrainingState":
        state = cls(**{f.name: checkpoint[f.name] for f in fields(cls)})
        state.best = float(state.best)
        return state


@dataclass
class _Run:
    """What the phases and epochs of one :meth:`AutoencoderTrainer.fit` share."""

    store: object
    md: ModelDir
    engine: _Engine
    model: torch.nn.Module           # as the engine prepared it (wrapped when distributed)
    net: SpectrumAutoencoder         # the same weights, unwrapped
    optimizer: torch.optim.Optimizer
    train_rows: np.ndarray
    val_rows: np.ndarray
    z_range: tuple[float, float]
    steps: int                       # optimizer steps per epoch
    history: list[dict] = field(default_factory=list)
    pending_optimizer: dict | None = None   # a resumed optimizer state, loaded at its phase


_LOSS_TERMS = ("fidelity", "similarity", "consistency")   # per-object means, summed times n
_EPOCH_SUMS = (*_LOSS_TERMS, "capped_fidelity", "chi2", "n_good", "n")  # an epoch's sums


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 32-bit seed that depends only on the run seed, the epoch and the stream (0 = training,
    1 = validation), so any epoch can be replayed without the RNG history before it."""
    return int(np.random.SeedSequence([seed, stream, epoch]).generate_state(1)[0])


def redshift_range(z: np.ndarray, quantile: float = 0.999, step: float = 0.01) -> tuple[float, float]:
    """Model redshift range from the training redshifts, rounded outwards to ``step``.

    A high quantile rather than the maximum keeps a few catastrophic redshifts (a mislabelled
    quasar at z=2.5) from stretching the rest-frame grid for everybody; those objects are flagged.
    """
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    if len(z) == 0:
        raise SpecsiftInputError("no finite redshift in the training split")
    lo = min(0.0, math.floor(np.quantile(z, 1 - quantile) / step) * step)
    hi = math.ceil(np.quantile(z, quantile) / step) * step
    if hi <= max(lo, 0.0):
        hi = max(lo, 0.0) + step
    return round(lo, 6), round(hi, 6)


def mean_rest_spectrum(store, rows: np.ndarray, wave_rest: np.ndarray, max_objects: int = 2000,
                       seed: int = 0) -> np.ndarray:
    """Mean of up to ``max_objects`` spectra of ``rows`` moved to the rest frame, on ``wave_rest``.

    Why: a decoder that starts from the mean spectrum only has to learn the differences between
    objects; from a random start the first epochs are spent learning the mean shape (measured:
    see docs/autoencoder.md). Each object counts once per rest pixel it covers with valid data;
    pixels no object covers take the nearest covered value.
    """
    rng = np.random.default_rng(seed)
    if len(rows) > max_objects:
        rows = np.sort(rng.choice(rows, max_objects, replace=False))
    total = np.zeros(len(wave_rest))
    count = np.zeros(len(wave_rest))
    wave = np.asarray(store.wave, dtype=np.float64)
    for batch in store.batches(batch_size=256, rows=rows):
        for flux, ivar, z in zip(batch["flux"], batch["ivar"], batch["z"]):
            good = (ivar > 0) & np.isfinite(flux)
            if not np.isfinite(z) or good.sum() < 2:
                continue
            rest = wave[good] / (1.0 + float(z))
            inside = (wave_rest >= rest[0]) & (wave_rest <= rest[-1])
            total[inside] += np.interp(wave_rest[inside], rest, flux[good])
            count[inside] += 1
    if not count.any():
        return np.ones(len(wave_rest))
    covered = np.flatnonzero(count > 0)
    mean = np.zeros(len(wave_rest))
    mean[covered] = total[covered] / count[covered]
    nearest = covered[np.clip(np.searchsorted(covered, np.arange(len(wave_rest))), 0,
                              len(covered) - 1)]
    return np.where(count > 0, mean, mean[nearest])


def _snapshot(net) -> dict:
    """A CPU copy of the weights (the best epoch of a phase, restored at its end)."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def kept_epoch(history: list[dict]) -> dict:
    """The record of the weights a run kept: the lowest validation selection loss of its last
    phase (a ``start`` record is the weights that phase began with)."""
    last = [r for r in history if r.get("phase") == history[-1].get("phase")]
    return min(last, key=selection_loss)


def selection_loss(record: dict) -> float:
    """The validation loss that chooses the kept epoch (logs written before the fidelity cap
    have only the plain loss)."""
    return record.get("val_selection", record.get("val_loss", math.inf))


def auto_batch_size(n_train: int, steps: int = 32, smallest: int = 16, largest: int = 128) -> int:
    """The power of two nearest ``n_train / steps`` within [smallest, largest]: at least ``steps``
    optimisation steps per epoch where the sample allows. Why: at a fixed epoch budget, 1,000
    stars in batches of 128 get ~130 steps in all, too few to converge (docs/autoencoder.md)."""
    target = max(n_train / steps, 1.0)
    return int(min(max(2 ** round(math.log2(target)), smallest), largest))


def make_optimizer(parameters, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel: one pass over the parameters instead of one per moment
    (the decoder's last layer holds most of the ~12 M parameters; on CPU the default
    implementation costs about a tenth of a training step)."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=True)


class _Engine:
    """Where the maths runs: one device, or several processes through ``accelerate``."""

    def __init__(self, device: str, distributed: bool, amp: bool):
        self.accelerator = None
        if distributed:
            try:
                from accelerate import Accelerator
            except ImportError as error:
                raise ImportError("multi-GPU training needs the optional extra: "
                                  "pip install 'specsift[distributed]'") from error
            # cpu=True lets accelerate join CPU processes (gloo) started by torchrun or mpirun
            cpu = device == "cpu" or not torch.cuda.is_available()
            self.accelerator = Accelerator(mixed_precision="bf16" if amp and not cpu else "no",
                                           cpu=cpu)
            self.device = self.accelerator.device
        else:
            self.device = resolve_device(device)
        self.amp = amp and self.device.type == "cuda"

    @property
    def rank(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def world(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, model, optimizer):
        if self.accelerator:
            return self.accelerator.prepare(model, optimizer)
        return model.to(self.device), optimizer

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model) if self.accelerator else model

    def autocast(self):
        if self.accelerator:
            return self.accelerator.autocast()
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss):
        (self.accelerator.backward if self.accelerator else torch.Tensor.backward)(loss)

    def clip(self, parameters, max_norm: float):
        if self.accelerator:
            return self.accelerator.clip_grad_norm_(parameters, max_norm)
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def total(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor of metric sums over processes."""
        return self.accelerator.reduce(values, reduction="sum") if self.accelerator else values


class AutoencoderTrainer:
    """Train a :class:`SpectrumAutoencoder` on a :class:`~specsift.store.SpectraStore`.

    Arguments:
        latents: size S of the latent vector.
        size: ``small`` (CPU) or ``paper`` (GPU), see :mod:`specsift.models.configs`.
        widths: overrides of the named size's settings (e.g. ``{"channels": [8, 16, 32]}``).
        epochs: total epoch budget; ``phase1_fraction`` of it goes to phase 1.
        batch_size: spectra per optimisation step; None: :func:`auto_batch_size` of the train
            split (a small sample then still takes enough steps per epoch to converge).
        lr: peak learning rate of the one-cycle schedule (phase 2 uses ``lr * phase2_lr``).
        warmup_fraction: share of phase 1 spent raising the learning rate to its peak (the
            later phases keep torch's 0.3); 0.1 reaches chi2 1.2 epochs sooner but ranked
            outliers worse on a mock (docs/autoencoder.md), so the default stays at 0.3.
        weight_decay: AdamW weight decay.
        clip: gradient-norm clipping threshold.
        patience: epochs without validation improvement before a phase stops early.
        selection_cap: reduced chi-square at which an object's fidelity is capped in the
            validation loss that picks the kept epoch and stops a phase early.
        similarity_weight, consistency_weight: weights of the phase-2 losses (defaults from the
            20k mock BGS run in docs/autoencoder.md: 0.1 keeps fidelity, 10 gives invariance).
        decoder_epochs: epochs of the last phase (decoder alone on the frozen encoder; 0: none),
            on top of ``epochs``; not with ``distributed``.
        augment_shift: largest redshift change of the consistency copies.
        augment_noise: extra noise of the copies, in units of the pixel sigma (at most).
        augment_fraction: share of each batch that gets a redshifted copy (the copies double
            the encoder's work, the CPU bottleneck, so a half is a compromise).
        z_range: ``(z_min, z_max)`` of the model; ``None`` derives it from the training split.
        seed: makes initialisation, data order and augmentation reproducible.
        device: ``auto`` (GPU when present), ``cpu``, ``cuda``...
        amp: bfloat16 mixed precision on GPU (ignored on CPU).
        distributed: run data-parallel through ``accelerate`` (started by ``torchrun`` or
            ``accelerate launch``).

    After :meth:`fit`: ``model_`` (the best autoencoder, eval mode), ``history_`` (one dict per
    epoch, as in ``training_log.jsonl``) and ``batch_size_`` (the batch size used).
    """

    def __init__(self, latents: int = DEFAULTS.latents, size: str = DEFAULTS.size,
                 widths: dict | None = None, epochs: int = DEFAULTS.epochs,
                 phase1_fraction: float = DEFAULTS.phase1_fraction,
                 batch_size: int | None = None, lr: float = DEFAULTS.lr,
                 warmup_fraction: float = DEFAULTS.warmup_fraction,
                 phase2_lr: float = DEFAULTS.phase2_lr,
                 weight_decay: float = DEFAULTS.weight_decay, clip: float = DEFAULTS.clip,
                 patience: int = DEFAULTS.patience,
                 selection_cap: float = DEFAULTS.selection_cap,
                 similarity_weight: float = DEFAULTS.similarity_weight,
                 consistency_weight: float = DEFAULTS.consistency_weight,
                 decoder_epochs: int = DEFAULTS.decoder_epochs,
                 augment_shift: float = DEFAULTS.augment_shift,
                 augment_noise: float = DEFAULTS.augment_noise,
                 augment_fraction: float = DEFAULTS.augment_fraction,
                 z_range: tuple[float, float] | None = None, seed: int = DEFAULTS.seed,
                 device: str = DEFAULT_DEVICE, amp: bool = True, distributed: bool = False):
        self.latents = latents
        self.size = size
        self.widths = widths
        self.epochs = epochs
        self.phase1_fraction = phase1_fraction
        self.batch_size = batch_size
        self.lr = lr
        self.warmup_fraction = warmup_fraction
        self.phase2_lr = phase2_lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.patience = patience
        self.selection_cap = selection_cap
        self.similarity_weight = similarity_weight
        self.consistency_weight = consistency_weight
        self.decoder_epochs = decoder_epochs
        self.augment_shift = augment_shift
        self.augment_noise = augment_noise
        self.augment_fraction = augment_fraction
        self.z_range = z_range
        self.seed = seed
        self.device = device
        self.amp = amp
        self.distributed = distributed

    # -- settings -------------------------------------------------------------------------------

    def _settings(self) -> dict:
        """The parameters that define the run (a resumed run must use the same ones)."""
        keys = ("latents", "size", "widths", "epochs", "phase1_fraction", "batch_size", "lr",
                "warmup_fraction", "phase2_lr", "weight_decay", "clip", "patience", "selection_cap",
                "similarity_weight", "consistency_weight", "decoder_epochs", "augment_shift",
                "augment_noise", "augment_fraction", "seed")
        return {k: getattr(self, k) for k in keys}

    def _phase_epochs(self) -> tuple[int, int, int]:
        first = max(1, round(self.epochs * self.phase1_fraction)) if self.epochs > 1 else self.epochs
        return first, self.epochs - first, self.decoder_epochs

    # -- the losses of one batch ------------------------------------------------------------------

    def _batch_losses(self, model, batch, phase: int, generator, engine) -> dict:
        """Loss terms (tensors) and chi-square sums of one batch; flagged objects are left out."""
        device = engine.device
        flux = torch.as_tensor(batch["flux"], device=device)
        ivar = torch.as_tensor(batch["ivar"], device=device)
        z = torch.as_tensor(batch["z"], device=device, dtype=torch.float32)
        net = engine.unwrap(model)
        flux, ivar, z, flag = clean_batch(flux, ivar, z, net.z_min, net.z_max)
        valid = flag == 0
        b = len(z)
        k = math.ceil(self.augment_fraction * b)  # the batch is shuffled: copy the first k
        if phase == 1:  # originals and their redshifted copies go through one forward call
            copies = redshift_copy(flux[:k], ivar[:k], z[:k], net.wave_obs, net.z_min, net.z_max,
                                   generator, self.augment_shift, self.augment_noise)
            flux, ivar, z = (torch.cat([a, c]) for a, c in zip((flux, ivar, z), copies))
        with engine.autocast():
            latents, rest, recon, covered = model(flux, ivar, z)
        weight = (net.weights(ivar) * covered)[:b]
        recon = recon[:b].float()
        chi2, n_good = chi2_terms(flux[:b], weight, recon)
        terms = {"fidelity": fidelity_loss(flux[:b], weight, recon, valid)}
        pixels = flux.shape[-1]
        capped = torch.minimum(chi2, self.selection_cap * n_good) * 0.5 / pixels
        if phase == 1:
            latents = latents.float()
            terms["similarity"] = similarity_loss(latents[:b], rest[:b].float(), valid=valid)
            terms["consistency"] = consistency_loss(latents[:k], latents[b:], valid[:k])
        terms["loss"] = (terms["fidelity"]
                         + self.similarity_weight * terms.get("similarity", 0.0)
                         + self.consistency_weight * terms.get("consistency", 0.0))
        terms["_n"] = valid.sum()
        terms["_chi2"] = (chi2 * valid).sum()
        terms["_capped_fidelity"] = (capped * valid).sum()
        terms["_n_good"] = (n_good * valid).sum()
        terms["_flag"] = flag
        return terms

    # -- one pass over a split ---------------------------------------------------------------------

    def _rows(self, store, split: str, engine) -> np.ndarray:
        rows = np.flatnonzero(np.asarray(store.meta["SPLIT"]) == split)
        if engine.world > 1:  # equal shards, so every process takes the same number of steps
            usable = len(rows) - len(rows) % engine.world
            rows = rows[engine.rank:usable:engine.world]
        return rows

    def _run_epoch(self, model, store, rows, phase, epoch, engine, optimizer=None, scheduler=None):
        training = optimizer is not None
        model.train(training)
        seed = epoch_seed(self.seed, epoch) if training else epoch_seed(self.seed, 0, stream=1)
        generator = torch.Generator(device=engine.device).manual_seed(seed)
        sums = torch.zeros(len(_EPOCH_SUMS), dtype=torch.float64, device=engine.device)
        flagged: dict[int, int] = {}
        batches = store.batches(batch_size=self.batch_size_, rows=rows, shuffle=training, seed=seed)
        bar = progress(batches, total=math.ceil(len(rows) / self.batch_size_), leave=False,
                       desc=f"{PHASES[phase]} {'train' if training else 'val'} epoch {epoch}")
        for batch in bar:
            with torch.set_grad_enabled(training):
                terms = self._batch_losses(model, batch, phase, generator, engine)
            if training:
                optimizer.zero_grad(set_to_none=True)
                engine.backward(terms["loss"])
                engine.clip(model.parameters(), self.clip)
                optimizer.step()
                scheduler.step()
            n = terms["_n"].double()
            batch_sums = {"chi2": terms["_chi2"].detach().double(),
                          "capped_fidelity": terms["_capped_fidelity"].detach().double(),
                          "n_good": terms["_n_good"].double(), "n": n}
            batch_sums.update({k: n * terms[k].detach().double() for k in _LOSS_TERMS
                               if k in terms})
            sums += torch.stack([batch_sums.get(k, torch.zeros((), dtype=torch.float64,
                                                               device=n.device))
                                 for k in _EPOCH_SUMS])
            for bit in FLAG_NAMES:
                count = int(((terms["_flag"] & bit) > 0).sum())
                if count:
                    flagged[bit] = flagged.get(bit, 0) + count
        if training and epoch == 0 and flagged:
            for bit, count in flagged.items():
                logger.warning("%d training objects skipped: %s (see FLAG in `specsift encode`)",
                               count, FLAG_NAMES[bit])
        total = dict(zip(_EPOCH_SUMS, engine.total(sums).cpu().numpy()))
        n = max(total["n"], 1.0)
        result = {"fidelity": total["fidelity"] / n,
                  "reduced_chi2": total["chi2"] / max(total["n_good"], 1.0), "n": int(total["n"])}
        if phase == 1:
            result.update(similarity=total["similarity"] / n, consistency=total["consistency"] / n)
        result["loss"] = (result["fidelity"] + self.similarity_weight * result.get("similarity", 0)
                          + self.consistency_weight * result.get("consistency", 0))
        result["selection"] = result["loss"] - result["fidelity"] + total["capped_fidelity"] / n
        return {k: float(v) if k != "n" else v for k, v in result.items()}

    # -- checkpoints ------------------------------------------------------------------------------

    def _save_checkpoint(self, md: ModelDir, state: dict) -> None:
        md.save_checkpoint(state)  # sha256 recorded, as for model weights

    def _load_checkpoint(self, md: ModelDir) -> dict:
        state = md.load_checkpoint()  # refuses a damaged checkpoint with a one-line error
        saved, now = json.loads(state["settings"]), self._settings()
        if saved != now:
            changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
            raise SpecsiftInputError("cannot resume with different settings: "
                                     + ", ".join(f"{k} was {saved.get(k, 'not set')}"
                                                 for k in changed),
                                     path=md.checkpoint_path)
        return state

    # -- the loop -----------------------------------------------------------------------------------

    def build(self, store, z_range: tuple[float, float]) -> SpectrumAutoencoder:
        """A freshly initialised autoencoder for ``store``'s grid (seeded), whose decoder starts
        from the mean rest-frame spectrum of the training split."""
        torch.manual_seed(self.seed)
        instrument = Instrument(np.asarray(store.wave), name=getattr(store, "survey", ""))
        model = SpectrumAutoencoder(instrument, self.latents, *z_range, **self._architecture())
        train = np.flatnonzero(np.asarray(store.meta["SPLIT"]) == "train")
        model.decoder.start_from(mean_rest_spectrum(store, train, model.wave_rest.numpy(),
                                                    seed=self.seed))
        return model

    def _architecture(self) -> dict:
        return architecture(self.size, **(self.widths or {}))

    def fit(self, store, model_dir, resume: bool = False) -> "AutoencoderTrainer":
        """Train on ``store``'s train split, early-stop on its validation split, write ``model_dir``."""
        md = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
        if self.distributed and self.decoder_epochs:
            raise ValueError("decoder_epochs needs single-process training: data-parallel "
                             "wrappers expect every parameter to receive a gradient")
        engine = _Engine(self.device, self.distributed, self.amp)
        if not resume and (md.checkpoint_path.exists() or md.config):
            raise FileExistsError(f"{md.path} already holds a model or a training run; pass "
                                  "--resume to continue it or choose another --out")
        if resume and not md.checkpoint_path.exists():
            raise FileNotFoundError(f"{md.path}: no checkpoint to resume from")
        train_rows = self._rows(store, "train", engine)
        val_rows = self._rows(store, "validation", engine)
        if len(train_rows) == 0 or len(val_rows) == 0:
            raise SpecsiftInputError("the store needs objects in both the train and the validation "
                                     "split", path=getattr(store, "path", None))
        checkpoint = self._load_checkpoint(md) if resume else None
        z_range = self._z_range(store, checkpoint)
        model = self.build(store, z_range)
        model, optimizer = engine.prepare(model, make_optimizer(model.parameters(), self.lr,
                                                                 self.weight_decay))
        self.batch_size_ = self.batch_size or auto_batch_size(len(train_rows) * engine.world)
        run = _Run(store, md, engine, model, engine.unwrap(model), optimizer, train_rows,
                   val_rows, z_range, math.ceil(len(train_rows) / self.batch_size_))
        state = _TrainingState()
        if checkpoint is not None:
            run.net.load_state_dict(checkpoint["model"])
            run.pending_optimizer = checkpoint["optimizer"]
            torch.set_rng_state(checkpoint["rng"])
            run.history = json.loads(checkpoint["history"])
            state = _TrainingState.from_checkpoint(checkpoint)
            logger.info("resuming %s at epoch %d (phase %d)", md.path, state.epoch, state.phase + 1)
        logger.info("training a %s autoencoder (S=%d, %d parameters) on %d objects, z in [%g, %g], "
                    "device %s, %d process(es)", self.size, self.latents,
                    sum(p.numel() for p in run.net.parameters()), len(train_rows) * engine.world,
                    *z_range, engine.device, engine.world)
        start = time.perf_counter()
        while state.phase < len(PHASES):
            state = self._run_phase(run, state)
        run.net.encoder.requires_grad_(True)  # the frozen decoder phase must not outlive training
        if engine.is_main:
            self._write_model(md, run.net, z_range, run.history, getattr(store, "survey", ""))
        logger.info("training finished in %.1f min", (time.perf_counter() - start) / 60)
        self.model_ = run.net.eval()
        self.history_ = run.history
        return self

    def _z_range(self, store, checkpoint: dict | None) -> tuple[float, float]:
        """The checkpoint's range on a resume, else the one given, else the train split's."""
        if checkpoint is not None:
            return tuple(checkpoint["z_range"].tolist())
        if self.z_range is not None:
            return tuple(float(v) for v in self.z_range)
        # from the whole split, not this process's shard: every process builds the same grid
        train_split = np.asarray(store.meta["SPLIT"]) == "train"
        return redshift_range(np.asarray(store.meta["Z"])[train_split])

    def _run_phase(self, run: _Run, state: _TrainingState) -> _TrainingState:
        """Train ``state.phase`` to its end (epoch budget or early stop); keep its best epoch.
        Returns the state at the start of the next phase."""
        phase, n_epochs = state.phase, self._phase_epochs()[state.phase]
        run.net.encoder.requires_grad_(PHASES[phase] != "decoder")
        if run.pending_optimizer is not None and state.scheduler is None:
            run.optimizer.load_state_dict(run.pending_optimizer)  # resumed at a phase start
            run.pending_optimizer = None
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            run.optimizer, max_lr=self.lr * (1 if phase == 0 else self.phase2_lr),
            total_steps=max(n_epochs, 1) * run.steps,
            pct_start=self.warmup_fraction if PHASES[phase] == "fidelity" else 0.3)
        if state.scheduler is not None:  # resumed mid-phase
            # after creating the scheduler, which resets the learning rate and momentum
            run.optimizer.load_state_dict(run.pending_optimizer)
            scheduler.load_state_dict(state.scheduler)
            run.pending_optimizer = None
        if PHASES[phase] == "decoder" and n_epochs and state.best_model is None:
            # the phase refits fidelity alone, so it keeps the incoming weights unless an
            # epoch beats them (its first, restarting the schedule, often does not)
            with torch.no_grad():
                val = self._run_epoch(run.model, run.store, run.val_rows, phase, state.epoch,
                                      run.engine)
            state.best, state.best_model = val["selection"], _snapshot(run.net)
            incoming = kept_epoch(run.history)["epoch"] if run.history else state.epoch - 1
            run.history.append({"epoch": incoming, "phase": PHASES[phase], "start": True,
                                **{f"val_{k}": v for k, v in val.items()}})
            logger.info("decoder phase starts from val loss %.4f, val reduced chi2 %.3f",
                        val["loss"], val["reduced_chi2"])
        while state.epoch_in_phase < n_epochs and state.stale < self.patience:
            tic = time.perf_counter()
            train = self._run_epoch(run.model, run.store, run.train_rows, phase, state.epoch,
                                    run.engine, run.optimizer, scheduler)
            with torch.no_grad():
                val = self._run_epoch(run.model, run.store, run.val_rows, phase, state.epoch,
                                      run.engine)
            if val["selection"] < state.best:
                state.best, state.stale, state.best_model = val["selection"], 0, _snapshot(run.net)
            else:
                state.stale += 1
            run.history.append({"epoch": state.epoch, "phase": PHASES[phase],
                                "lr": scheduler.get_last_lr()[0],
                                "seconds": time.perf_counter() - tic,
                                **{f"train_{k}": v for k, v in train.items()},
                                **{f"val_{k}": v for k, v in val.items()}})
            logger.info("epoch %d (%s): train loss %.4f, val loss %.4f (capped %.4f), "
                        "val reduced chi2 %.3f", state.epoch, PHASES[phase], train["loss"],
                        val["loss"], val["selection"], val["reduced_chi2"])
            state.epoch += 1
            state.epoch_in_phase += 1
            state.scheduler = scheduler.state_dict()
            self._checkpoint(run, state)
        if state.best_model is not None:  # keep the best validation epoch of this phase
            run.net.load_state_dict(state.best_model)
        state = _TrainingState(phase=phase + 1, epoch=state.epoch)
        self._checkpoint(run, state)
        return state

    def _checkpoint(self, run: _Run, state: _TrainingState) -> None:
        if not run.engine.is_main:
            return
        run.md.path.mkdir(parents=True, exist_ok=True)
        self._save_checkpoint(run.md, {
            "model": {k: v.detach().cpu() for k, v in run.net.state_dict().items()},
            "optimizer": run.optimizer.state_dict(), "rng": torch.get_rng_state(),
            "history": json.dumps(run.history), "settings": json.dumps(self._settings()),
            "z_range": torch.tensor(run.z_range, dtype=torch.float64),
            **state.to_checkpoint()})
        run.md.write_training_log(run.history)

    def _write_model(self, md: ModelDir, net, z_range, history, survey: str) -> None:
        arch = self._architecture()
        config = {"model": "spectrum-autoencoder", "latents": self.latents, "size": self.size,
                  "architecture": arch, "z_min": z_range[0], "z_max": z_range[1],
                  "survey": survey,
                  "wave_obs": {"min": float(net.wave_obs[0]), "max": float(net.wave_obs[-1]),
                               "n": len(net.wave_obs)},
                  "rest_wave": {"min": float(net.wave_rest[0]), "max": float(net.wave_rest[-1]),
                                "n": len(net.wave_rest)},
                  "training": {**self._settings(), "batch_size_used": self.batch_size_,
                               "epochs_run": sum(not r.get("start") for r in history)}}
        md.save_weights(AUTOENCODER_WEIGHTS, net.state_dict(), extra_config=config)
