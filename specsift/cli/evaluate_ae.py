"""``specsift evaluate-ae``: fidelity per split, redshift invariance, and a Fig. 2-like figure."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..models.defaults import INVARIANCE_OBJECTS
from ._defaults import add_batch_size_option, add_device_option

__all__ = ["register"]

logger = logging.getLogger("specsift.models")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate-ae", help="report the autoencoder's fidelity and redshift invariance",
        description="Per split (train/validation/test): fidelity loss (eq. 1 of Liang et al. "
                    "2023) and pooled reduced chi-square; the redshift-invariance ratio (mean "
                    "latent distance of random pairs / of each object and its redshifted copy; "
                    "the paper reaches 21). --plot draws spectra, models and line zooms.")
    parser.add_argument("store", type=Path)
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    parser.add_argument("--plot", type=Path, default=None, metavar="PNG",
                        help="write a reconstruction figure (spectra, models, line zooms)")
    parser.add_argument("--plot-rows", type=int, nargs="+", default=None,
                        help="store rows to plot (default: three test objects)")
    parser.add_argument("--max-objects", type=int, default=INVARIANCE_OBJECTS,
                        help=f"validation objects used for the invariance ratio "
                             f"({INVARIANCE_OBJECTS})")
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="Gauss-Newton steps of the refined fit reported in chi2_by_snr "
                             "(default: as many as `score` takes; 0: the encoder's fit only)")
    add_batch_size_option(parser)
    parser.add_argument("--seed", type=int, default=0)
    add_device_option(parser)
    parser.set_defaults(func=run, outputs=("out", "plot"))


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_path
    from ..models.evaluation import evaluate
    from ..models.modeldir import ModelDir
    from ..models.refine import REFINE_STEPS
    from ..runtime import resolve_device
    from ..store import SpectraStore

    device = resolve_device(args.device)
    store = SpectraStore(args.store)
    autoencoder = ModelDir(args.model).load_autoencoder(device=device)
    report = evaluate(autoencoder, store, batch_size=args.batch_size, device=device,
                      max_objects=args.max_objects, seed=args.seed,
                      refine_steps=REFINE_STEPS if args.refine_steps is None
                      else args.refine_steps)
    text = json.dumps(report, indent=2)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for split, values in report["splits"].items():
            print(f"{split:>10}: fidelity loss {values['fidelity_loss']:.4f}, reduced chi2 "
                  f"{values['reduced_chi2']:.3f} (median {values['reduced_chi2_median']:.3f}, "
                  f"{values['n_objects']} objects, {values['n_flagged']} flagged)")
        print(f"invariance ratio: {report['invariance_ratio']:.1f}")
        for fit, values in report["chi2_by_snr"].items():
            parts = [f"{name.split('_')[0]} S/N {values[name]['median_snr']:.1f}: "
                     f"{values[name]['median_reduced_chi2']:.3f}"
                     for name in ("low_snr_tercile", "middle_snr_tercile", "high_snr_tercile",
                                  "brightest") if name in values]
            print(f"median reduced chi2 of validation objects ({fit} fit): " + "; ".join(parts))
    if args.plot:
        from ..plots.reconstruction import save_reconstruction_figure

        save_reconstruction_figure(args.plot, autoencoder, store, rows=args.plot_rows,
                                   device=device, seed=args.seed)
        logger.info("wrote %s", args.plot)
    return 0
