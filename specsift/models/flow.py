"""A density model of the autoencoder latents: how typical is an object's compressed spectrum.

The outlier score is ``-log p(latents)``. The latents of a well-trained autoencoder have very
different scales per dimension, so the flow is fitted on standardised latents and the
standardisation's Jacobian is added back: :meth:`LatentFlow.log_prob` is the density of the *raw*
latents, which is what makes the scores of two objects (or two runs of the same model) comparable.

References:
    | Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017)
    | https://arxiv.org/abs/1705.07057
    | Autoencoding Galaxy Spectra II: Redshift Invariance and Outlier Detection (Liang et al., 2023)
    | https://arxiv.org/abs/2302.02496
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..errors import SpecsiftInputError
from ..runtime import DEFAULT_DEVICE, progress, resolve_device
from .defaults import FLOW, INFERENCE_BATCH

__all__ = ["LatentFlow", "FLOW_WEIGHTS", "collect_latents"]

logger = logging.getLogger("specsift.flow")

FLOW_WEIGHTS = "flow"
_STATS = ("latent_mean", "latent_std")


class LatentFlow:
    """Masked autoregressive flow (zuko MAF) on standardised latent vectors.

    Arguments:
        transforms: number of autoregressive transforms.
        hidden: hidden layer sizes of each transform's masked MLP.
        max_epochs: upper bound on training epochs.
        patience: stop after this many epochs without a better validation log-likelihood; the
            weights of the best validation epoch are kept (early stopping).
        lr: Adam learning rate.
        batch_size: objects per optimisation step.
        seed: makes initialisation and batch order reproducible.
        device: ``auto`` (GPU when present), ``cpu``, ``cuda``...

    Example:
        >>> rng = np.random.default_rng(0)
        >>> train, val = rng.normal(size=(500, 2)), rng.normal(size=(100, 2))
        >>> flow = LatentFlow(max_epochs=5, device="cpu").fit(train, val)
        >>> flow.log_prob(np.zeros((1, 2))).shape
        (1,)
    """

    def __init__(self, transforms: int = FLOW.transforms, hidden: tuple[int, ...] = FLOW.hidden,
                 max_epochs: int = FLOW.max_epochs, patience: int = FLOW.patience,
                 lr: float = FLOW.lr, batch_size: int = FLOW.batch_size, seed: int = FLOW.seed,
                 device: str = DEFAULT_DEVICE):
        self.transforms = transforms
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.device = device

    # -- construction -------------------------------------------------------------------------

    def _build(self, features: int):
        import zuko

        return zuko.flows.MAF(features, transforms=self.transforms,
                              hidden_features=tuple(self.hidden))

    def _check_fitted(self) -> None:
        if not hasattr(self, "flow_"):
            raise RuntimeError("this LatentFlow is not fitted yet: call fit() or LatentFlow.load()")

    def _as_tensor(self, latents, name: str) -> torch.Tensor:
        array = np.asarray(latents, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] == 0:
            raise SpecsiftInputError(f"{name} must be a non-empty (objects, latents) array, "
                                     f"got shape {array.shape}")
        if hasattr(self, "n_features_") and array.shape[1] != self.n_features_:
            raise SpecsiftInputError(f"{name} has {array.shape[1]} latents, the flow was fitted "
                                     f"on {self.n_features_}")
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            raise SpecsiftInputError(f"{name} holds non-finite latents in row {int(np.argmax(bad))}"
                                     f" ({int(bad.sum())} rows in all); drop flagged objects first",
                                     row=int(np.argmax(bad)))
        return torch.from_numpy(array)

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, latents_train, latents_val) -> "LatentFlow":
        """Fit the flow by maximum likelihood, early-stopped on the validation log-likelihood."""
        train = self._as_tensor(latents_train, "latents_train")
        val = self._as_tensor(latents_val, "latents_val")
        if val.shape[1] != train.shape[1]:
            raise SpecsiftInputError(f"validation latents have {val.shape[1]} dimensions, "
                                     f"training latents {train.shape[1]}")
        device = resolve_device(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.n_features_ = train.shape[1]
        self.latent_mean_ = train.mean(0)
        # a dead latent (zero spread) would give an infinite Jacobian: floor the scale
        self.latent_std_ = train.std(0).clamp_min(1e-6 * float(train.std(0).max()) + 1e-12)
        self.flow_ = self._build(self.n_features_).to(device)
        train_std = self._standardise(train).to(device)
        val_std = self._standardise(val).to(device)
        optimizer = torch.optim.Adam(self.flow_.parameters(), lr=self.lr)
        best, best_state, stale = -math.inf, None, 0
        self.history_ = []
        bar = progress(range(self.max_epochs), desc="flow", unit="epoch")
        for epoch in bar:
            self.flow_.train()
            order = torch.randperm(len(train_std), generator=generator).to(device)
            for start in range(0, len(order), self.batch_size):
                batch = train_std[order[start:start + self.batch_size]]
                loss = -self.flow_().log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            val_ll = float(self._mean_log_prob_std(val_std))
            self.history_.append(val_ll)
            bar.set_postfix(val_logp=f"{val_ll:.3f}")
            if val_ll > best + 1e-4:
                best, stale = val_ll, 0
                best_state = {k: v.detach().clone() for k, v in self.flow_.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is None:
            raise RuntimeError("the flow's validation log-likelihood was never finite; check the "
                               "latents for extreme values or lower the learning rate")
        self.flow_.load_state_dict(best_state)
        self.flow_.eval()
        self.n_epochs_ = len(self.history_)
        self.best_val_log_prob_ = best - float(torch.log(self.latent_std_).sum())
        logger.info("flow: %d epochs, best validation mean log p = %.3f (raw latents)",
                    self.n_epochs_, self.best_val_log_prob_)
        return self

    def _standardise(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents - self.latent_mean_) / self.latent_std_

    @torch.no_grad()
    def _mean_log_prob_std(self, latents_std: torch.Tensor) -> torch.Tensor:
        self.flow_.eval()
        total = sum(float(self.flow_().log_prob(latents_std[i:i + 4096]).sum())
                    for i in range(0, len(latents_std), 4096))
        return torch.tensor(total / len(latents_std))

    # -- scoring ------------------------------------------------------------------------------

    @torch.no_grad()
    def log_prob(self, latents) -> np.ndarray:
        """Log density of raw (unstandardised) latents, (B,) float64; accepts numpy or torch."""
        self._check_fitted()
        if isinstance(latents, torch.Tensor):
            latents = latents.detach().cpu().numpy()
        x = self._standardise(self._as_tensor(latents, "latents"))
        device = next(self.flow_.parameters()).device
        logp = self.flow_().log_prob(x.to(device)).double().cpu()
        return (logp - torch.log(self.latent_std_.double()).sum()).numpy()

    @torch.no_grad()
    def base_coordinates(self, latents) -> np.ndarray:
        """Latents mapped to the flow's standard-normal base, (B, S) float64.

        Why: for latents drawn from the fitted density these are independent standard normals,
        so their squared norm is chi-square with S degrees of freedom (a tail probability that
        is comparable across objects and models) and distances between them are on one scale
        in every direction (see :mod:`specsift.catalog.evidence`).
        """
        self._check_fitted()
        if isinstance(latents, torch.Tensor):
            latents = latents.detach().cpu().numpy()
        x = self._standardise(self._as_tensor(latents, "latents"))
        device = next(self.flow_.parameters()).device
        return self.flow_().transform(x.to(device)).double().cpu().numpy()

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flow weights plus the standardisation statistics, as one flat tensor dict."""
        self._check_fitted()
        state = {f"flow.{k}": v.detach().cpu().contiguous()
                 for k, v in self.flow_.state_dict().items()}
        state[_STATS[0]] = self.latent_mean_.contiguous()
        state[_STATS[1]] = self.latent_std_.contiguous()
        return state

    def config(self) -> dict:
        """Hyper-parameters needed to rebuild the network before loading the weights."""
        return {"features": int(self.n_features_), "transforms": self.transforms,
                "hidden": list(self.hidden), "epochs": self.n_epochs_,
                "best_val_log_prob": self.best_val_log_prob_, "seed": self.seed}

    def save(self, model_dir) -> None:
        """Store the flow in a :class:`~specsift.models.modeldir.ModelDir` (safetensors, sha256)."""
        model_dir.save_weights(FLOW_WEIGHTS, self.state_dict(),
                               extra_config={"flow": self.config()})

    @classmethod
    def load(cls, model_dir, device: str = DEFAULT_DEVICE) -> "LatentFlow":
        """Rebuild the flow saved in ``model_dir``; the weights' sha256 is verified on loading."""
        config = model_dir.config.get("flow")
        if not config:
            raise SpecsiftInputError("model directory holds no flow; run `specsift train-flow`",
                                     path=getattr(model_dir, "path", None))
        self = cls(transforms=config["transforms"], hidden=tuple(config["hidden"]),
                   seed=config.get("seed", 0), device=device)
        state = model_dir.load_weights(FLOW_WEIGHTS)
        self.n_features_ = int(config["features"])
        self.n_epochs_ = config.get("epochs")
        self.best_val_log_prob_ = config.get("best_val_log_prob")
        self.latent_mean_ = state.pop(_STATS[0]).float().cpu()
        self.latent_std_ = state.pop(_STATS[1]).float().cpu()
        self.flow_ = self._build(self.n_features_)
        self.flow_.load_state_dict({k.removeprefix("flow."): v for k, v in state.items()})
        self.flow_.to(resolve_device(device)).eval()
        return self


def collect_latents(autoencoder, store, split: str, batch_size: int = INFERENCE_BATCH,
                    device=DEFAULT_DEVICE) -> np.ndarray:
    """Latents of every unflagged object of one ``split`` of ``store``: what
    :meth:`LatentFlow.fit` is fitted on. Flagged objects are counted and logged."""
    from .inference import encode_batches

    kept, flagged = [], 0
    for batch in encode_batches(autoencoder, store, batch_size=batch_size, split=split,
                                device=str(device)):
        ok = batch["flag"] == 0
        flagged += int((~ok).sum())
        kept.append(np.asarray(batch["latents"])[ok])
    if flagged:
        logger.warning("%s split: %d flagged objects left out of the flow fit", split, flagged)
    if not sum(len(k) for k in kept):
        raise SpecsiftInputError(f"the {split} split holds no usable objects",
                                 path=getattr(store, "path", None))
    return np.concatenate(kept)
