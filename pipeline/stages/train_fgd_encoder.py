"""Stage ``train_fgd_encoder``: train the FGD encoder whose latents define FGD (paper §5.1, Eq. 12).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1]); cuts every
ground-truth sequence into windows of ``fgd_encoder.window`` (34) frames with
:func:`pipeline.evaluation.metrics.windows` (stride ``fgd_encoder.train_stride`` for training and
``fgd_encoder.stride`` for the dev check; sequences shorter than a window are padded by repeating
their last frame, exactly as at evaluation); values are clipped to [0, 1] for BCE (the count is
reported). Trains :class:`pipeline.models.fgd_encoder.FGDEncoder` with BCE reconstruction through
the training engine and writes

- ``models/fgd_encoder/``: ``config.json`` + ``model.pt`` (read by
  :func:`pipeline.models.fgd_encoder.load_fgd_encoder`; the config holds the window and the
  evaluation stride) and ``summary.json`` (dev BCE/MSE, window counts, train time);
- ``models/fgd_encoder_ckpt/``: Lightning checkpoints for resuming a killed run; deleted after a
  successful fit.

It depends only on the data (and its params), so DVC reuses it across student experiments.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from pipeline.config import Stage, check_seed, param, parse_section
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.metrics import windows
from pipeline.models.fgd_encoder import FGDEncoder, FGDEncoderConfig
from pipeline.models.io import save_model
from pipeline.training import engine

LIFTED, OUT, CKPT = Path("data/lifted"), Path("models/fgd_encoder"), Path("models/fgd_encoder_ckpt")
SUMMARY = OUT / "summary.json"  # inside the model directory
STAGE = Stage("train_fgd_encoder", ("seed", "fgd_encoder", "train"), (LIFTED,), (OUT, CKPT))
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FGDEncoderSection:
    """The ``fgd_encoder`` params section: the model (:class:`FGDEncoderConfig`, with the window and
    the evaluation stride) and how it is trained."""

    fit: engine.FitConfig = param(flatten=True)
    train_stride: int = param(gt=0)  # window stride when cutting the train sequences for training
    model: FGDEncoderConfig = param(factory=FGDEncoderConfig, flatten=True)


def split_windows(store: SplitStore, where: str | Path, size: int, stride: int) -> tuple[np.ndarray, int]:
    """Windows ``[W, size, J*3]`` float32 of every sequence of ``store``, clipped to [0, 1]; and #clipped."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    out, clipped = [], 0
    for i in range(len(store)):
        seq = np.asarray(store.sequence(i), dtype=np.float32)
        name = store.index[i].get("name", f"#{i}")
        if len(seq) == 0:
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no frames")
        if not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has non-finite values")
        clipped += int(((seq < 0) | (seq > 1)).sum())
        out.append(windows(np.clip(seq, 0.0, 1.0).reshape(len(seq), -1), size, stride))
    if not out:
        raise StoreError(f"{where}: no sequences")
    return np.concatenate(out), clipped


@torch.no_grad()
def reconstruction(encoder: FGDEncoder, x: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Mean BCE and MSE of the reconstruction of windows ``x``."""
    encoder.eval()
    bce = mse = 0.0
    for s in range(0, len(x), batch_size):
        b = torch.from_numpy(x[s : s + batch_size])
        logits = encoder(b)
        bce += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, b)) * len(b)
        mse += float(torch.nn.functional.mse_loss(torch.sigmoid(logits), b)) * len(b)
    return {"bce": bce / len(x), "mse": mse / len(x)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_fgd_encoder``; returns the summary written to summary.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "fgd_encoder", FGDEncoderSection)
    seed = check_seed(params["seed"])
    size, stride = sec.model.window, sec.model.stride
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    train, clip_train = split_windows(stores["train"], LIFTED / "train", size, sec.train_stride)
    dev, clip_dev = split_windows(stores["dev"], LIFTED / "dev", size, stride)
    config = dataclasses.replace(sec.model, n_features=train.shape[-1])
    digest = engine.data_digest(train, dev)
    fingerprint = {"fgd_encoder": dataclasses.asdict(sec), "seed": seed, "data": digest}

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        module = engine.LossModule(FGDEncoder(config), sec.fit.lr, name="bce")
        bs = sec.fit.batch_size
        fit = job.fit(
            module,
            DataLoader(TensorDataset(torch.from_numpy(train)), bs, shuffle=True, num_workers=job.workers),
            DataLoader(TensorDataset(torch.from_numpy(dev)), bs * 4, num_workers=job.workers),
        )
        if not fit.is_global_zero:
            return {}
        encoder = module.model.cpu().float().eval()
        save_model(encoder, OUT)
        summary = {
            "train_windows": len(train),
            "dev_windows": len(dev),
            "epochs": fit.epochs,
            "train_seconds": round(fit.seconds, 2),
            "clipped": {"train": clip_train, "dev": clip_dev},
            "dev": reconstruction(encoder, dev),
        }
        job.finish(summary, SUMMARY, OUT)
        log.info("dev reconstruction %s (%d windows, %.1f s)", summary["dev"], len(dev), fit.seconds)
        return summary


if __name__ == "__main__":
    main()
