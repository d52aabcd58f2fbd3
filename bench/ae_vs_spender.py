"""Training-step and encode throughput of specsift's autoencoder against spender 0.3, same data.

Both implementations get the same architecture (SPENDER: 3 conv blocks 128/256/512, kernels
5/11/21, conv->norm->PReLU->pool, decoder 64/256/1024; or the ``--small`` widths) and the same
random batches on the DESI grid. spender runs in a throwaway venv under /tmp (created on first
use with ``pip install torch==2.13.0 spender==0.3 torchinterp1d --no-deps`` + its small deps) in
a subprocess; this script times specsift in-process, then spender, and prints ratios. The venv
reuses specsift's own torch through a .pth file, so the benchmark never installs another torch.
Differences that remain: spender 0.3's encoder reads the flux alone (specsift adds a valid-pixel
channel and the redshift), a few hundred parameters.

    .venv/bin/python bench/ae_vs_spender.py [--small] [--steps 10] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

VENV = Path("/tmp/specsift-spender-venv")
P, Z_MAX = 7781, 0.6

SPENDER_SCRIPT = textwrap.dedent("""
    import json, sys, time, numpy as np, torch
    from spender import SpectrumAutoencoder
    from spender.instrument import BaseInstrument
    cfg = json.loads(sys.argv[1]); torch.set_num_threads(cfg["threads"])
    wave = torch.linspace(3600.0, 9824.0, cfg["P"])
    rest = torch.linspace(3600.0 / (1 + cfg["z_max"]), 9824.0, cfg["R"])
    model = SpectrumAutoencoder(BaseInstrument(wave), rest, n_latent=6,
                                n_hidden=tuple(cfg["decoder"]))
    data = np.load(cfg["data"]); x, w, z = (torch.tensor(data[k]) for k in ("flux", "ivar", "z"))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    def step(i):
        sl = slice(i * cfg["batch"], (i + 1) * cfg["batch"])
        loss = model.loss(x[sl], w[sl], z=z[sl])
        opt.zero_grad(); loss.backward(); opt.step()
    step(0); t = time.perf_counter()
    for i in range(cfg["steps"]): step(i % cfg["nb"])
    train = cfg["steps"] * cfg["batch"] / (time.perf_counter() - t)
    with torch.no_grad():
        t = time.perf_counter()
        for i in range(cfg["nb"]):
            sl = slice(i * cfg["batch"], (i + 1) * cfg["batch"])
            model.encode(x[sl])
        enc = cfg["nb"] * cfg["batch"] / (time.perf_counter() - t)
    print(json.dumps({"train_spectra_per_s": train, "encode_spectra_per_s": enc}))
""")


def ensure_spender_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "spender==0.3",
                        "torchinterp1d", "nflows", "GPUtil", "humanize", "psutil"], check=True)
        import torch  # specsift's torch (the pinned 2.13.0) serves the venv too

        site = next(VENV.glob("lib/python*/site-packages"))
        (site / "specsift_torch.pth").write_text(str(Path(torch.__file__).parent.parent) + "\n")
    return python


def time_specsift(cfg: dict, data: dict) -> dict:
    import torch

    from specsift.models.autoencoder import SpectrumAutoencoder
    from specsift.models.instrument import Instrument
    from specsift.models.losses import fidelity_loss

    torch.set_num_threads(cfg["threads"])
    arch = {"channels": [128, 256, 512], "kernels": [5, 11, 21], "encoder_hidden": [128, 64, 32],
            "decoder_hidden": cfg["decoder"], "rest_step": cfg["rest_step"], "pool_first": False}
    model = SpectrumAutoencoder(Instrument(np.linspace(3600.0, 9824.0, P)), 6, 0.0, Z_MAX, **arch)
    x, w, z = (torch.tensor(data[k]) for k in ("flux", "ivar", "z"))
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(i):
        sl = slice(i * cfg["batch"], (i + 1) * cfg["batch"])
        _, _, recon, covered = model(x[sl], w[sl], z[sl])
        loss = fidelity_loss(x[sl], w[sl] * covered, recon)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(0)
    tic = time.perf_counter()
    for i in range(cfg["steps"]):
        step(i % cfg["nb"])
    train = cfg["steps"] * cfg["batch"] / (time.perf_counter() - tic)
    with torch.no_grad():
        tic = time.perf_counter()
        for i in range(cfg["nb"]):
            sl = slice(i * cfg["batch"], (i + 1) * cfg["batch"])
            model.encode(x[sl], w[sl], z[sl])
        enc = cfg["nb"] * cfg["batch"] / (time.perf_counter() - tic)
    return {"train_spectra_per_s": train, "encode_spectra_per_s": enc, "n_rest": len(model.rest_wave)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few steps, small batch")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ae_vs_spender.json")
    args = parser.parse_args()
    steps, batch = (3, 16) if args.small else (args.steps, args.batch)
    rng = np.random.default_rng(0)
    nb = 4
    data = {"flux": (1 + 0.3 * rng.normal(size=(nb * batch, P))).astype(np.float32),
            "ivar": np.full((nb * batch, P), 10.0, np.float32),
            "z": rng.uniform(0.01, 0.5, nb * batch).astype(np.float32)}
    path = Path("/tmp/ae_vs_spender_batches.npz")
    np.savez(path, **data)
    rest_step = 0.8
    n_rest = int(np.ceil((9824.0 - 3600.0 / (1 + Z_MAX)) / rest_step)) + 1
    cfg = {"threads": args.threads, "P": P, "R": n_rest, "z_max": Z_MAX, "batch": batch,
           "steps": steps, "nb": nb, "decoder": [64, 256, 1024], "rest_step": rest_step,
           "data": str(path)}
    ours = time_specsift(cfg, data)
    python = ensure_spender_venv()
    done = subprocess.run([str(python), "-c", SPENDER_SCRIPT, json.dumps(cfg)], check=True,
                          capture_output=True, text=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    result = {"config": cfg, "specsift": ours, "spender": theirs,
              "train_step_ratio": ours["train_spectra_per_s"] / theirs["train_spectra_per_s"],
              "encode_ratio": ours["encode_spectra_per_s"] / theirs["encode_spectra_per_s"]}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
