"""The defaults of training, encoding and evaluation, written once.

:class:`~specsift.models.training.AutoencoderTrainer`, :class:`~specsift.models.flow.LatentFlow`
and the encoding, scoring and evaluation functions take their defaults from here, and the CLI
builds its options from the same values. The module imports no torch, so the CLI starts (and
``--help`` answers) without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutoencoderDefaults", "FlowDefaults", "AUTOENCODER", "FLOW", "INFERENCE_BATCH",
           "INVARIANCE_OBJECTS"]


@dataclass(frozen=True)
class AutoencoderDefaults:
    """Defaults of the autoencoder's two-phase training (docs/autoencoder.md says why each)."""

    latents: int = 6
    size: str = "small"
    epochs: int = 16
    phase1_fraction: float = 0.6
    lr: float = 2e-3
    warmup_fraction: float = 0.3
    phase2_lr: float = 0.5
    weight_decay: float = 1e-4
    clip: float = 1.0
    patience: int = 5
    selection_cap: float = 10.0
    similarity_weight: float = 0.1
    consistency_weight: float = 10.0
    decoder_epochs: int = 3
    augment_shift: float = 0.2
    augment_noise: float = 0.3
    augment_fraction: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class FlowDefaults:
    """Defaults of the masked autoregressive flow on the latents."""

    transforms: int = 5
    hidden: tuple[int, ...] = (64, 64)
    max_epochs: int = 300
    patience: int = 15
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0


#: Spectra per model call when encoding, evaluating and scoring (bounds the memory of a call).
INFERENCE_BATCH = 512
#: Validation objects behind the invariance ratio of ``evaluate-ae`` (random pairs among them).
INVARIANCE_OBJECTS = 2000

AUTOENCODER = AutoencoderDefaults()
FLOW = FlowDefaults()
