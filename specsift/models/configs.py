"""Named network sizes: widths are configuration, not code, so one class serves CPU and GPU runs.

``paper`` follows SPENDER (Melchior et al. 2023; Liang et al. 2023): three convolution blocks with
128/256/512 channels and kernels 5/11/21 (about 3 M encoder parameters), an encoder MLP
256->128->64->S and decoder hidden layers 64/256/1024. ``small`` keeps the same topology with
eight times fewer channels and a coarser rest-frame grid, so that 20,000 spectra train in
minutes on a 2-core CPU.
"""

from __future__ import annotations

from copy import deepcopy

__all__ = ["SIZES", "architecture"]

SIZES: dict[str, dict] = {
    "small": {
        "channels": [16, 32, 64],
        "kernels": [5, 11, 21],
        "encoder_hidden": [64, 32],
        "decoder_hidden": [64, 256],
        "rest_step": 0.25,      # Angstrom per rest-frame pixel: resolves the LSF at low z
    },
    "paper": {
        "channels": [128, 256, 512],
        "kernels": [5, 11, 21],
        "encoder_hidden": [128, 64],
        "decoder_hidden": [64, 256, 1024],
        "rest_step": 0.8,
    },
}


def architecture(size: str, **overrides) -> dict:
    """A copy of the named size with ``overrides`` applied (unknown size -> ValueError)."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    unknown = set(overrides) - set(SIZES[size])
    if unknown:
        raise ValueError(f"unknown architecture settings: {', '.join(sorted(unknown))}")
    arch = deepcopy(SIZES[size])
    arch.update({k: v for k, v in overrides.items() if v is not None})
    return arch
