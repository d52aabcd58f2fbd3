"""``specsift train-ae``: train the spectrum autoencoder on an ingested store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..models.configs import SIZES
from ..models.defaults import AUTOENCODER as DEFAULTS
from ._defaults import add_device_option, add_options_from

__all__ = ["register"]

logger = logging.getLogger("specsift.models")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-ae", help="train the spectrum autoencoder on a store",
        description="Train a SPENDER-style autoencoder in two phases (fidelity, then fidelity + "
                    "similarity + consistency) with early stopping on the validation split. "
                    "MODEL_DIR receives autoencoder.safetensors, config.json (with the sha256), "
                    "training_log.jsonl and checkpoint.pt (for --resume).")
    parser.add_argument("store", type=Path, help="store folder written by `specsift ingest`")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    add_options_from(parser, DEFAULTS, {"--latents": "latent dimensions S"})
    parser.add_argument("--size", choices=tuple(SIZES), default=DEFAULTS.size,
                        help=f"small: CPU in minutes; paper: SPENDER widths for GPUs "
                             f"({DEFAULTS.size})")
    steps = ", ".join(f"{size['rest_step']:g} {name}" for name, size in SIZES.items())
    parser.add_argument("--rest-step", type=float, default=None,
                        help=f"rest-frame pixel of the decoder in Angstrom (default: the size's, "
                             f"{steps}); finer resolves the narrow lines of stars")
    add_options_from(parser, DEFAULTS, {
        "--epochs": "total epochs of both phases",
        "--phase1-fraction": "share of the epochs spent on phase 1, fidelity only"})
    parser.add_argument("--batch-size", type=int, default=None,
                        help="spectra per step (default: a power of two near the train split / "
                             "32, from 16 to 128, so small samples still take enough steps)")
    add_options_from(parser, DEFAULTS, {
        "--lr": "peak learning rate",
        "--warmup-fraction": "share of phase 1 spent warming the learning rate up to its peak",
        "--phase2-lr": "phase-2 peak learning rate as a fraction of --lr; gentler keeps the "
                       "phase-1 fidelity",
        "--patience": "early-stopping patience in epochs",
        "--selection-cap": "reduced chi2 at which a validation object's fidelity is capped when "
                           "choosing the kept epoch, so misfits (anomalies) do not choose it",
        "--similarity-weight": "phase-2 weight of the similarity loss; larger costs fidelity",
        "--consistency-weight": "phase-2 weight of the consistency (redshift invariance) loss",
        "--decoder-epochs": "after the two phases, refit the decoder alone on the frozen encoder "
                            "for this many epochs; latents, hence invariance, unchanged"})
    parser.add_argument("--z-max", type=float, default=None,
                        help="highest redshift the model covers (default: from the training split)")
    add_options_from(parser, DEFAULTS, {"--seed": "seed of the initialisation, data order and "
                                                  "augmentation"})
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel through accelerate (start with `torchrun --nproc_per_node N` "
                             "or `accelerate launch --multi_gpu`)")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..models.training import AutoencoderTrainer, kept_epoch, redshift_range
    from ..runtime import keep_freed_memory
    from ..store import SpectraStore

    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = SpectraStore(args.store)
    z_range = None
    if args.z_max is not None:
        import numpy as np

        z_min = redshift_range(np.asarray(store.meta["Z"]))[0]
        z_range = (z_min, args.z_max)
    trainer = AutoencoderTrainer(
        latents=args.latents, size=args.size, epochs=args.epochs,
        widths={"rest_step": args.rest_step} if args.rest_step else None,
        phase1_fraction=args.phase1_fraction, batch_size=args.batch_size, lr=args.lr,
        warmup_fraction=args.warmup_fraction, phase2_lr=args.phase2_lr,
        patience=args.patience, selection_cap=args.selection_cap,
        similarity_weight=args.similarity_weight,
        consistency_weight=args.consistency_weight, decoder_epochs=args.decoder_epochs,
        z_range=z_range, seed=args.seed,
        device=args.device, distributed=args.distributed)
    trainer.fit(store, args.out, resume=args.resume)
    kept = kept_epoch(trainer.history_) if trainer.history_ else {}
    logger.info("model written to %s (kept epoch %s: validation reduced chi2 %.3f)", args.out,
                kept.get("epoch"), kept.get("val_reduced_chi2", float("nan")))
    return 0
