"""Training-step and encode throughput of specsift's autoencoder against spender 0.3, same data.

Both implementations get the same architecture (SPENDER: 3 conv blocks 128/256/512, kernels
5/11/21, conv->norm->PReLU->pool, decoder 64/256/1024) and the same random batches on the DESI
grid. spender runs in a throwaway venv under /tmp (created on first use with ``pip install
spender==0.3 torchinterp1d --no-deps`` + its small deps; the venv reuses specsift's own torch
through a .pth file, so the benchmark never installs another torch). Differences that remain:
spender 0.3's encoder reads the flux alone (specsift adds a valid-pixel channel and the
redshift), a few hundred parameters.

Why two workers in lockstep: on a shared machine the load changes from minute to minute, so
timing one implementation after the other can give any ratio. Each implementation lives in its
own worker process (model built once, warmed up); the workers then take turns, ``--rounds``
times, and the reported ratio is the median of the per-round ratios, each from two timings
taken seconds apart.

    .venv/bin/python bench/ae_vs_spender.py [--rounds 5] [--steps 4] [--batch 16]

Results: printed and written to ``bench/results/ae_vs_spender.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

VENV = Path("/tmp/specsift-spender-venv")
P, Z_MAX, REST_STEP = 7781, 0.6, 0.8

# Shared by both workers: load the batches, then answer "train" / "encode" lines with timings.
WORKER_LOOP = textwrap.dedent("""
    import json, sys, time, numpy as np, torch
    cfg = json.loads(sys.argv[1]); torch.set_num_threads(cfg["threads"]); torch.manual_seed(0)
    data = np.load(cfg["data"]); x, w, z = (torch.tensor(data[k]) for k in ("flux", "ivar", "z"))
    def batch(i):
        sl = slice((i % cfg["nb"]) * cfg["batch"], (i % cfg["nb"] + 1) * cfg["batch"])
        return x[sl], w[sl], z[sl]
    def serve(model, train_step, encode, opt):
        def step(i):
            loss = train_step(*batch(i)); opt.zero_grad(); loss.backward(); opt.step()
        step(0)
        print("ready", flush=True)
        for line in sys.stdin:
            tic = time.perf_counter()
            if line.strip() == "train":
                for i in range(cfg["steps"]): step(i)
            else:
                with torch.no_grad():
                    for i in range(cfg["nb"]): encode(*batch(i))
            print(time.perf_counter() - tic, flush=True)
""")

SPENDER_WORKER = WORKER_LOOP + textwrap.dedent("""
    from spender import SpectrumAutoencoder
    from spender.instrument import BaseInstrument
    wave = torch.linspace(3600.0, 9824.0, cfg["P"])
    rest = torch.linspace(3600.0 / (1 + cfg["z_max"]), 9824.0, cfg["R"])
    model = SpectrumAutoencoder(BaseInstrument(wave), rest, n_latent=6,
                                n_hidden=tuple(cfg["decoder"]))
    serve(model, lambda x, w, z: model.loss(x, w, z=z), lambda x, w, z: model.encode(x),
          torch.optim.Adam(model.parameters(), 1e-3))  # as spender's training scripts
""")

SPECSIFT_WORKER = WORKER_LOOP + textwrap.dedent("""
    from specsift.models.autoencoder import SpectrumAutoencoder
    from specsift.models.instrument import Instrument
    from specsift.models.losses import fidelity_loss
    from specsift.models.training import make_optimizer
    arch = {"channels": [128, 256, 512], "kernels": [5, 11, 21], "encoder_hidden": [128, 64, 32],
            "decoder_hidden": cfg["decoder"], "rest_step": cfg["rest_step"]}
    model = SpectrumAutoencoder(Instrument(np.linspace(3600.0, 9824.0, cfg["P"])), 6, 0.0,
                                cfg["z_max"], **arch)
    def train_step(x, w, z):
        _, _, recon, covered = model(x, w, z)
        return fidelity_loss(x, w * covered, recon)
    serve(model, train_step, model.encode, make_optimizer(model.parameters(), 1e-3, 1e-4))
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


class Worker:
    """One implementation in its own process, timed on request."""

    def __init__(self, python: Path, script: str, cfg: dict):
        self.process = subprocess.Popen([str(python), "-c", script, json.dumps(cfg)], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"benchmark worker {python} failed to start")

    def time(self, task: str) -> float:
        self.process.stdin.write(task + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per timing")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "ae_vs_spender.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    nb = 4
    data = {"flux": (1 + 0.3 * rng.normal(size=(nb * args.batch, P))).astype(np.float32),
            "ivar": np.full((nb * args.batch, P), 10.0, np.float32),
            "z": rng.uniform(0.01, 0.5, nb * args.batch).astype(np.float32)}
    path = Path("/tmp/ae_vs_spender_batches.npz")
    np.savez(path, **data)
    n_rest = int(np.ceil((9824.0 - 3600.0 / (1 + Z_MAX)) / REST_STEP)) + 1
    cfg = {"threads": args.threads, "P": P, "R": n_rest, "z_max": Z_MAX, "batch": args.batch,
           "steps": args.steps, "nb": nb, "decoder": [64, 256, 1024], "rest_step": REST_STEP,
           "data": str(path)}
    workers = {"specsift": Worker(Path(sys.executable), SPECSIFT_WORKER, cfg),
               "spender": Worker(ensure_spender_venv(), SPENDER_WORKER, cfg)}
    seconds = {name: {"train": [], "encode": []} for name in workers}
    for _ in range(args.rounds):
        for task in ("train", "encode"):
            for name, worker in workers.items():
                seconds[name][task].append(worker.time(task))
    for worker in workers.values():
        worker.close()
    spectra = {"train": args.steps * args.batch, "encode": nb * args.batch}
    result = {"config": {**cfg, "rounds": args.rounds}}
    for name in workers:
        result[name] = {f"{task}_spectra_per_s": spectra[task] / float(np.median(seconds[name][task]))
                        for task in spectra}
    for task in spectra:  # per round: the two timings were taken seconds apart
        ratios = np.asarray(seconds["spender"][task]) / np.asarray(seconds["specsift"][task])
        result[f"{task}_ratio_per_round"] = ratios.round(3).tolist()
        result[f"{'train_step' if task == 'train' else task}_ratio"] = float(np.median(ratios))
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
