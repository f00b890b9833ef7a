"""Training throughput (samples/s) of the training stages at a params profile.

    python -m benchmarks.train_throughput [--profile default] [--frames 60000] [--epochs 2]

VAE: frames/s of ``pipeline.stages.pretrain_vae``'s Lightning fit (the stage's own module, loader and
``make_trainer``) on synthetic smooth motion of ``--frames`` frames x 50 joints x 3, plus the
bare PyTorch step rate (no Lightning) for reference. Student: benchmarks/student_throughput.py.
Prints one JSON object; figures go to docs/benchmarks.md ("## Training throughput").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.config import deep_merge, load_params, parse_section
from pipeline.models.vae import VAE
from pipeline.stages.pretrain_vae import loader
from pipeline.training import engine
from pipeline.training.engine import TrainConfig
from pipeline.training.sections import VAESection


def fake_frames(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 150]`` frames in (0, 1): smooth 4-D motion through a fixed random map (like poses)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 25.0
    z = np.sin(2 * np.pi * (t * rng.uniform(0.2, 1.5, 4) + rng.uniform(0, 1, 4)))
    return (1 / (1 + np.exp(-z @ rng.normal(0, 1, (4, 150))))).astype(np.float32)


def vae_throughput(params: dict[str, Any], frames: np.ndarray, epochs: int) -> dict[str, Any]:
    """Frames/s of the stage's Lightning fit and of a bare PyTorch loop at ``params['vae']``."""
    sec = parse_section(params, "vae", VAESection)
    engine.seed(params.get("seed", 0))
    config = dataclasses.replace(sec.model, n_features=frames.shape[1])
    module = engine.LossModule(VAE(config), sec.fit.lr)
    with tempfile.TemporaryDirectory() as tmp:
        train_cfg = dataclasses.replace(parse_section(params, "train", TrainConfig), progress_bar=False)
        trainer, _ = engine.make_trainer(train_cfg, Path(tmp), epochs)
        t0 = time.perf_counter()
        trainer.fit(module, loader(frames, sec.fit.batch_size, True, 0))
        lightning_s = time.perf_counter() - t0
    model = VAE(config)
    opt = torch.optim.AdamW(model.parameters(), lr=sec.fit.lr)
    x = torch.from_numpy(frames)
    bs = sec.fit.batch_size
    t0 = time.perf_counter()
    for start in range(0, len(x), bs):
        loss = model.loss(x[start : start + bs])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    bare_s = time.perf_counter() - t0
    return {
        "frames": len(frames),
        "epochs": epochs,
        "batch_size": bs,
        "hidden": config.hidden,
        "latent": config.latent,
        "lightning_frames_per_s": round(len(frames) * epochs / lightning_s, 1),
        "lightning_s_per_epoch": round(lightning_s / epochs, 2),
        "bare_torch_frames_per_s": round(len(frames) / bare_s, 1),
    }


# ---------------------------------------------------------------------------------------------
# STUDENT: the train_student figures come from benchmarks/student_throughput.py (its owner's
# script, same "## Training throughput" section of docs/benchmarks.md).
# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default", help="params profile (default | tiny | paper)")
    ap.add_argument("--frames", type=int, default=60_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = load_params()
    params = base
    if args.profile != "default":
        raw = __import__("yaml").safe_load(Path("params.yaml").read_text())
        params = deep_merge(base, raw["profiles"][args.profile])
    result = {
        "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
        f"cuda={torch.cuda.is_available()}",
        "profile": args.profile,
        "vae": vae_throughput(params, fake_frames(args.frames), args.epochs),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
