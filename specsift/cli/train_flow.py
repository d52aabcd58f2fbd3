"""``specsift train-flow``: fit the latent density (MAF) of a trained autoencoder's sample."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..models.defaults import FLOW
from ._defaults import add_batch_size_option, add_device_option, add_options_from

__all__ = ["register"]

logger = logging.getLogger("specsift.flow")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-flow", help="fit the latent-density flow of a model directory",
        description="Encode the training and validation splits of STORE with the autoencoder of "
                    "MODEL_DIR and fit a masked autoregressive flow to the standardised latents, "
                    "early-stopped on the validation split. The flow is saved into MODEL_DIR "
                    "(flow.safetensors, sha256 recorded). Then the outlier tests are calibrated: "
                    "the model uncertainty, the usual missing-pixel shares and the validation "
                    "scores behind OUTLIER_PVALUE (outlier.safetensors).")
    parser.add_argument("store", type=Path, help="ingested store the autoencoder was trained on")
    parser.add_argument("--model", type=Path, required=True, help="model directory (MODEL_DIR)")
    add_options_from(parser, FLOW, {
        "--transforms": "autoregressive transforms",
        "--hidden": "hidden layer sizes of each transform",
        "--max-epochs": "most epochs",
        "--patience": "epochs without validation improvement before stopping",
        "--lr": "learning rate"})
    add_batch_size_option(parser)
    parser.add_argument("--no-outlier-calibration", dest="outlier_calibration",
                        action="store_false",
                        help="skip the outlier tests' calibration: enough for a model used only "
                             "as `score --star-model` (it never gives OUTLIER_SCORE)")
    add_options_from(parser, FLOW, {"--seed": "seed of the flow's initialisation and batches"})
    add_device_option(parser)
    parser.set_defaults(func=run, outputs=("model",))


def run(args: argparse.Namespace) -> int:
    from ..catalog.calibration import calibrate_outliers, save_calibration
    from ..models.flow import LatentFlow, collect_latents
    from ..models.modeldir import ModelDir
    from ..runtime import keep_freed_memory, resolve_device, seed_everything
    from ..store import SpectraStore

    keep_freed_memory()
    seed_everything(args.seed)
    device = resolve_device(args.device)
    store = SpectraStore(args.store)
    model_dir = ModelDir(args.model)
    autoencoder = model_dir.load_autoencoder(device=str(device))
    train = collect_latents(autoencoder, store, "train", args.batch_size, device)
    val = collect_latents(autoencoder, store, "validation", args.batch_size, device)
    logger.info("fitting the flow on %d training and %d validation latents (%d dimensions)",
                len(train), len(val), train.shape[1])
    flow = LatentFlow(transforms=args.transforms, hidden=tuple(args.hidden),
                      max_epochs=args.max_epochs, patience=args.patience, lr=args.lr,
                      seed=args.seed, device=str(device)).fit(train, val)
    flow.save(model_dir)
    logger.info("saved the flow to %s (%d epochs, validation mean log p %.2f)", args.model,
                flow.n_epochs_, flow.best_val_log_prob_)
    if not args.outlier_calibration:
        logger.info("no outlier calibration (--no-outlier-calibration): this model can serve as "
                    "the star model, not as the galaxy model of OUTLIER_SCORE")
        return 0
    calibration = calibrate_outliers(autoencoder, flow, store, batch_size=args.batch_size,
                                     device=str(device), seed=args.seed)
    save_calibration(model_dir, calibration)
    logger.info("saved the outlier calibration to %s", args.model)
    return 0
