"""RSCA model folders in the package's one "weights + config + sha256" format.

A folder is a :class:`~specsift.models.modeldir.ModelDir`: ``rsca.safetensors`` holds the
PPCA and metric arrays and the reference distances (:func:`.fitting.reference_distances`),
``config.json`` the options, sample cuts, pixel grid, windows and the arrays' sha256, checked
before anything is loaded. No pickle; written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SpecsiftInputError
from ..models.modeldir import CONFIG_NAME, ModelDir
from ..runtime import DEFAULT_DEVICE
from .ppca import PPCA, WeightedPPCA
from .rsca import RSCA, LatentMetric

__all__ = ["save_model", "load_model", "WEIGHTS", "MODEL_FILE", "CONFIG_FILE"]

WEIGHTS = "rsca"
MODEL_FILE = f"{WEIGHTS}.safetensors"
CONFIG_FILE = CONFIG_NAME
_METRIC = ("center_", "sphering_", "rotation_", "sigma_clust_", "scaling_", "plate_cov_")
_OPTIONS = ("n_components", "compress", "weighted", "seed", "whiten", "rotate",
            "relative_scaling", "plate_robust")


def save_model(model: RSCA, out: str | Path, config: dict, reference: dict | None = None
               ) -> Path:
    """Write ``model``, its ``reference`` distances and ``config`` (JSON-serialisable extras)
    into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {f"metric.{name}": getattr(model.metric_, name) for name in _METRIC}
    if model.ppca_ is not None:
        arrays.update({f"ppca.{k}": v for k, v in model.ppca_.state().items()})
    arrays.update({f"reference.{k}": v for k, v in (reference or {}).items()})
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    options = {name: getattr(model, name) for name in _OPTIONS}
    ModelDir(out).save_weights(WEIGHTS, tensors, extra_config={**config, **options})
    return out


def load_model(folder: str | Path, device: str = DEFAULT_DEVICE) -> tuple[RSCA, dict]:
    """Load a folder written by :func:`save_model` (sha256 verified first). The config's
    ``reference`` entry holds the reference distances as arrays."""
    folder = ModelDir(folder)
    if not folder.path.is_dir():
        raise SpecsiftInputError("no such RSCA model folder (write one with `specsift rsca fit`)",
                                 folder.path)
    config = folder.config
    if WEIGHTS not in config.get("weights", {}):
        raise SpecsiftInputError(f"not an RSCA model folder: {CONFIG_FILE} records no "
                                 f"'{WEIGHTS}' weights (write one with `specsift rsca fit`)",
                                 folder.path)
    arrays = {k: v.numpy() for k, v in folder.load_weights(WEIGHTS).items()}
    if "random_state" in config:  # folders written before the seed took the package's name
        config = {**config, "seed": config["random_state"]}
    model = RSCA(**{name: config[name] for name in _OPTIONS})
    if model.compress:
        cls = WeightedPPCA if model.weighted else PPCA
        state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("ppca.")}
        model.ppca_ = cls.from_state(state, device=device)
    else:
        model.ppca_ = None
    model.metric_ = model.latent_metric()
    for name in _METRIC:
        setattr(model.metric_, name, arrays[f"metric.{name}"])
    model.metric_.n_suppressed_ = int((model.metric_.scaling_ == 0).sum())
    model.metric_.n_plate_directions_ = int(np.linalg.matrix_rank(model.metric_.plate_cov_,
                                                                  1e-12))
    config = dict(config, reference={k.split(".", 1)[1]: v for k, v in arrays.items()
                                     if k.startswith("reference.")})
    return model, config
