"""Save and load a fitted RSCA model: safetensors arrays + a JSON config holding their sha256.

No pickle anywhere: arrays go to ``model.safetensors``, everything else (options, species,
pixel grid, interstellar windows, sample cuts) to ``config.json``. Both are written atomically;
loading refuses a model whose arrays do not match the recorded checksum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ..atomic import atomic_path, sha256_file
from ..errors import SpecsiftInputError
from .ppca import PPCA, WeightedPPCA
from .rsca import RSCA, LatentMetric

__all__ = ["save_model", "load_model", "MODEL_FILE", "CONFIG_FILE"]

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_METRIC = ("center_", "sphering_", "rotation_", "sigma_clust_", "scaling_")


def save_model(model: RSCA, out: str | Path, config: dict) -> Path:
    """Write ``model`` and ``config`` (JSON-serialisable extras) into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {f"metric.{name}": np.ascontiguousarray(getattr(model.metric_, name))
              for name in _METRIC}
    if model.ppca_ is not None:
        arrays.update({f"ppca.{k}": np.ascontiguousarray(v)
                       for k, v in model.ppca_.state().items()})
    with atomic_path(out / MODEL_FILE) as tmp:
        save_file(arrays, str(tmp))
    config = dict(config, n_components=model.n_components, compress=model.compress,
                  weighted=model.weighted, random_state=model.random_state,
                  whiten=model.whiten, rotate=model.rotate,
                  relative_scaling=model.relative_scaling,
                  sha256={MODEL_FILE: sha256_file(out / MODEL_FILE)})
    with atomic_path(out / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=1))
    return out


def load_model(folder: str | Path, device: str = "cpu") -> tuple[RSCA, dict]:
    """Load a model folder written by :func:`save_model`; verifies the arrays' sha256."""
    folder = Path(folder)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (folder / name).exists():
            raise SpecsiftInputError(f"not an RSCA model folder: {name} is missing", folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    expected = config.get("sha256", {}).get(MODEL_FILE)
    actual = sha256_file(folder / MODEL_FILE)
    if expected != actual:
        raise SpecsiftInputError(f"checksum mismatch: {MODEL_FILE} has sha256 {actual[:12]}..., "
                                 f"config.json records {str(expected)[:12]}...", folder)
    arrays = load_file(str(folder / MODEL_FILE))
    model = RSCA(config["n_components"], config["compress"], config["weighted"],
                 config["random_state"], whiten=config["whiten"], rotate=config["rotate"],
                 relative_scaling=config["relative_scaling"])
    if model.compress:
        cls = WeightedPPCA if model.weighted else PPCA
        state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("ppca.")}
        model.ppca_ = cls.from_state(state, device=device)
    else:
        model.ppca_ = None
    model.metric_ = LatentMetric(model.whiten, model.rotate, model.relative_scaling)
    for name in _METRIC:
        setattr(model.metric_, name, arrays[f"metric.{name}"])
    model.metric_.n_suppressed_ = int((model.metric_.scaling_ == 0).sum())
    return model, config
